// Kept in step with package.json by a test; a constant so bundles need no package.json.
export const VERSION = '0.1.0';
