import Foundation
import Tensor

/// Corpus scores under pycocoevalcap's key names.
public struct CaptionScores: Codable, Sendable, Equatable {
    public var bleu1: Double
    public var bleu2: Double
    public var bleu3: Double
    public var bleu4: Double
    public var meteor: Double
    public var rougeL: Double
    public var cider: Double

    enum CodingKeys: String, CodingKey, CaseIterable {
        case bleu1 = "Bleu_1", bleu2 = "Bleu_2", bleu3 = "Bleu_3", bleu4 = "Bleu_4"
        case meteor = "METEOR", rougeL = "ROUGE_L", cider = "CIDEr"
    }

    /// (pycocoevalcap key, value) in its report order.
    public var named: [(String, Double)] {
        [("Bleu_1", bleu1), ("Bleu_2", bleu2), ("Bleu_3", bleu3), ("Bleu_4", bleu4),
         ("METEOR", meteor), ("ROUGE_L", rougeL), ("CIDEr", cider)]
    }
}

/// The result of evaluating predicted captions against references.
public struct CaptionEvaluation: Sendable {
    public var scores: CaptionScores
    /// The evaluated images, in reference order.
    public var imageIDs: [ImageID]
    /// Per-image scores by pycocoevalcap key (BLEU per image as pycocoevalcap returns them).
    public var perImage: [String: [Double]]
    /// Reference images that had no prediction (left out of every score).
    public var imagesWithoutPrediction: [ImageID]
    /// METEOR's summed sufficient statistics per image.
    public var meteorStats: [Meteor.Stats]
}

/// BLEU-1…4, METEOR, ROUGE-L and CIDEr-D as pycocoevalcap's COCOEvalCap reports them, with
/// `params['image_id']` set to the predicted images (its documented use on a subset):
///
/// 1. the evaluated images are those with a prediction, in the order they first appear in the
///    references' annotations (COCOEvalCap follows the file's "images" list, which normally has
///    the same order; the order only matters to the tokenizer's look-ahead across captions);
/// 2. all references, then all predictions, are tokenized with the PTB tokenizer in that order;
/// 3. each scorer sees the same tokenized captions. CIDEr-D's document frequencies come from the
///    references of the evaluated images only.
///
/// Predictions for images that have no reference are an error (pycocoevalcap's `loadRes` refuses
/// them too); reference images without a prediction are left out and listed in
/// ``CaptionEvaluation/imagesWithoutPrediction`` (or an error with `requireAll`).
public enum CaptionEvaluator {
    public static func evaluate(predictions: CaptionPredictions, references: CaptionReferences,
                                requireAll: Bool = false, meteorParameters: Meteor.Parameters = Meteor.Parameters(),
                                predictionsFile: String? = nil, referencesFile: String? = nil) throws -> CaptionEvaluation {
        let unknown = predictions.entries.map(\.imageID).filter { !references.contains($0) }
        if !unknown.isEmpty {
            let refs = referencesFile.map { " \($0)" } ?? ""
            throw VideoBertError("\(unknown.count) predicted image_id(s) not in the references\(refs): \(listFew(unknown))",
                                 file: predictionsFile)
        }
        let evaluated = references.imageIDs.filter { predictions.caption(for: $0) != nil }
        let missing = references.imageIDs.filter { predictions.caption(for: $0) == nil }
        if requireAll && !missing.isEmpty {
            throw VideoBertError("\(missing.count) reference image_id(s) have no prediction: \(listFew(missing))", file: predictionsFile)
        }
        guard !evaluated.isEmpty else {
            throw VideoBertError("no predictions to evaluate", file: predictionsFile)
        }

        // pycocoevalcap tokenizes gts (all references, image by image) and res in two runs.
        let refCounts = evaluated.map { references.captions(for: $0)!.count }
        let refsTokenized = PTBTokenizer.cocoTokenize(evaluated.flatMap { references.captions(for: $0)! })
        var refs: [[String]] = []
        var k = 0
        for n in refCounts {
            refs.append(Array(refsTokenized[k..<(k + n)]))
            k += n
        }
        let hyps = PTBTokenizer.cocoTokenize(evaluated.map { predictions.caption(for: $0)! })

        let bleu = Bleu.score(hypotheses: hyps, references: refs, n: 4)
        let meteor = Meteor.score(hypotheses: hyps, references: refs, parameters: meteorParameters)
        let rouge = RougeL.score(hypotheses: hyps, references: refs)
        let cider = CiderD.score(hypotheses: hyps, references: refs)

        let scores = CaptionScores(bleu1: bleu.corpus[0], bleu2: bleu.corpus[1], bleu3: bleu.corpus[2], bleu4: bleu.corpus[3],
                                   meteor: meteor.corpus, rougeL: rouge.corpus, cider: cider.corpus)
        var perImage: [String: [Double]] = [:]
        for n in 0..<4 { perImage["Bleu_\(n + 1)"] = bleu.perImage.map { $0[n] } }
        perImage["METEOR"] = meteor.perImage
        perImage["ROUGE_L"] = rouge.perImage
        perImage["CIDEr"] = cider.perImage
        return CaptionEvaluation(scores: scores, imageIDs: evaluated, perImage: perImage, imagesWithoutPrediction: missing,
                                 meteorStats: meteor.stats)
    }

    /// Reads both files and evaluates.
    public static func evaluate(predictionsFile: String, referencesFile: String, requireAll: Bool = false) throws -> CaptionEvaluation {
        let refs = try CaptionFiles.loadReferences(referencesFile)
        let preds = try CaptionFiles.loadPredictions(predictionsFile)
        return try evaluate(predictions: preds, references: refs, requireAll: requireAll,
                            predictionsFile: predictionsFile, referencesFile: referencesFile)
    }

    /// "a, b, c and 7 more"
    static func listFew(_ ids: [ImageID], _ n: Int = 5) -> String {
        let shown = ids.prefix(n).map { id -> String in
            if case .string(let s) = id { return "\"\(s)\"" }
            return id.description
        }.joined(separator: ", ")
        return ids.count > n ? "\(shown) and \(ids.count - n) more" : shown
    }
}
