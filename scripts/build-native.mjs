// npm install hook: builds the native helper (holes, SEEK_DATA); the tool still works without it.
console.log('rblocksync: native helper not built yet');
