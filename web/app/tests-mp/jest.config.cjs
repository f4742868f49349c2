// Jest for the mp-weixin build: miniprogram-simulate renders the compiled pages in jsdom.
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'jsdom',
  testMatch: ['**/*.test.cjs'],
  setupFiles: ['<rootDir>/setup.cjs'],
  testTimeout: 30000,
}
