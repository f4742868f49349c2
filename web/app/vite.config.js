import { defineConfig } from 'vite'
import uni from '@dcloudio/vite-plugin-uni'

// H5: one bundle (about 100 kB gzipped) instead of a chunk per page, so every screen opens
// even when the network drops after the app has loaded (it then says what failed, in Chinese).
const h5 = process.env.UNI_PLATFORM === 'h5'

export default defineConfig({
  plugins: [uni()],
  build: h5 ? { rollupOptions: { output: { inlineDynamicImports: true } } } : {},
})
