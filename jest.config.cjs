/** Jest for the whole workspace: @swc/jest compiles TypeScript tests to CommonJS;
 *  `tsc -b` checks the types. Workspace packages resolve to their sources, so tests need no build. */
const path = require('node:path');
const fs = require('node:fs');

const pkgs = {};
for (const dir of ['packages', 'apps']) {
  for (const name of fs.readdirSync(path.join(__dirname, dir))) {
    const pj = path.join(__dirname, dir, name, 'package.json');
    if (!fs.existsSync(pj)) continue;
    const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
    pkgs[`^${pkg.name.replace('/', '\\/')}$`] = path.join(__dirname, dir, name, 'src', 'index.ts');
  }
}

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/apps'],
  testMatch: ['**/test/**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
  },
  moduleNameMapper: {
    ...pkgs,
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};
