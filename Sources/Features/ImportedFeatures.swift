import Foundation
import Tensor

/// Precomputed clip features brought by the user: one `<video_id>.npy` per video,
/// float32 or float16 (float64 accepted), shape [rows, dim], each row covering
/// `secondsPerRow` seconds from the start of the video. This is the layout of the
/// HowTo100M S3D dumps (1 s per row) and of most I3D / CLIP feature exports.
public struct ImportedFeatures: Sendable {
    public var videoID: String
    /// [rows, dim] row-major.
    public var values: [Float]
    public var rows: Int
    public var dim: Int
    public var secondsPerRow: Double

    /// Loads and validates one file: 2-D, no NaN or infinity, at least one row.
    public init(path: String, videoID: String, secondsPerRow: Double) throws {
        guard secondsPerRow > 0 else { throw VideoBertError("seconds per feature row must be positive (got \(secondsPerRow))", file: path) }
        let arr = try NPY.read(path)
        guard [.float32, .float16, .float64].contains(arr.dtype) else {
            throw VideoBertError("features must be float32 or float16, found \(arr.dtype.rawValue)", file: path)
        }
        guard arr.shape.count == 2 else {
            throw VideoBertError("features must have shape [clips, dim], found \(arr.shape)", file: path)
        }
        guard arr.shape[0] > 0, arr.shape[1] > 0 else {
            throw VideoBertError("features are empty (shape \(arr.shape))", file: path)
        }
        let v = try arr.floats()
        if let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw VideoBertError("row \(bad / arr.shape[1]) holds a NaN or infinite value", file: path)
        }
        self.videoID = videoID
        self.values = v
        self.rows = arr.shape[0]
        self.dim = arr.shape[1]
        self.secondsPerRow = secondsPerRow
    }

    /// Start and end time (seconds) of row `i`.
    public func span(ofRow i: Int) -> (start: Double, end: Double) {
        (Double(i) * secondsPerRow, Double(i + 1) * secondsPerRow)
    }
}
