export { thrownBy } from '../../../test-utils/pte-error.js';
