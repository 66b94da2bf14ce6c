export { thrownBy } from '@pte/test-utils';
