import Features
import Foundation
import Media
import Tensor

/// Audio decode (to mono float32 at the sample rate) + log-mel spectrogram of one file, best of
/// `--reps` passes, with the two stages timed apart. The peer (ffmpeg CLI + librosa) runs in
/// tools/bench/logmel.py, which calls this alternately with its own side.
///
///   bench logmel --file F [--reps 3] [--out mel.npy] [--set key=value,key=value] [--fft 0]
///
/// `--set` takes the settings of `videobert audio` (comma-separated); `--out` writes the
/// spectrogram of the last pass (for the peer script's parity check); `--fft 0` uses the DFT-matrix
/// STFT even for a power-of-two n_fft (to compare the two).
func benchLogMel(_ args: [String]) throws {
    let file = option(args, "file", "")
    guard !file.isEmpty else { throw VideoBertError("bench logmel: --file is required") }
    let reps = Int(option(args, "reps", "3")) ?? 3
    var settings = LogMelSettings()
    for item in option(args, "set", "").split(separator: ",") {
        let kv = item.split(separator: "=", maxSplits: 1)
        guard kv.count == 2 else { throw VideoBertError("bench logmel: --set key=value,key=value") }
        try settings.set(String(kv[0]), String(kv[1]))
    }
    let spectrogram = try LogMelSpectrogram(settings: settings, useFFT: option(args, "fft", "1") != "0")
    var best = Double.infinity, bestDecode = Double.infinity, bestMel = Double.infinity, bestCPU = Double.infinity
    var mel: [Float] = []
    var samples = 0
    for _ in 0..<reps {
        let t0 = now(), c0 = cpuSeconds()
        let audio = try AudioReader(path: file, sampleRate: settings.sampleRate).readAll()
        let t1 = now()
        mel = spectrogram.compute(audio.samples)
        let t2 = now()
        best = min(best, t2 - t0)
        bestCPU = min(bestCPU, cpuSeconds() - c0)
        bestDecode = min(bestDecode, t1 - t0)
        bestMel = min(bestMel, t2 - t1)
        samples = audio.samples.count
    }
    let frames = settings.frameCount(samples: samples)
    let out = option(args, "out", "")
    if !out.isEmpty {
        try mel.withUnsafeBytes { try NPY.write(raw: $0, dtype: .float32, shape: [frames, settings.nMels], to: out) }
    }
    // The DFT path's matrix products: frames × win_length × 2·bins multiply-adds.
    let flops = 2.0 * Double(frames) * Double(settings.winLength) * Double(2 * (settings.nFFT / 2 + 1))
    printJSON(["benchmark": "logmel", "file": file, "samples": samples, "frames": frames, "n_mels": settings.nMels,
               "seconds": best, "cpu_seconds": bestCPU, "decode_seconds": bestDecode, "logmel_seconds": bestMel,
               "stft": spectrogram.usesFFT ? "fft" : "dft", "dft_gflop": spectrogram.usesFFT ? 0 : flops / 1e9])
}
