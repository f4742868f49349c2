// Opening an authenticated PDF (an invoice): download with the token, then show it.
import { apiBase } from './platform'
import { session } from './session'

export function openPdf(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    uni.downloadFile({
      url: apiBase() + path,
      header: { Authorization: `Bearer ${session.access}` },
      success: (res) => {
        if (res.statusCode !== 200) {
          reject(new Error('download failed'))
          return
        }
        // #ifdef H5
        window.open(res.tempFilePath, '_blank')
        resolve()
        // #endif
        // #ifdef MP-WEIXIN
        uni.openDocument({ filePath: res.tempFilePath, fileType: 'pdf', success: () => resolve(), fail: reject })
        // #endif
      },
      fail: reject,
    })
  })
}
