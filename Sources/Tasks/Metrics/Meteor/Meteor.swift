import Foundation

/// METEOR 1.5 (Denkowski and Lavie 2014, "Meteor Universal: Language Specific Translation
/// Evaluation for Any Target Language") as pycocoevalcap runs it — `java -jar meteor-1.5.jar - -
/// -stdio -l en -norm` — with the exact and stem matching modules.
///
/// What is reproduced from the jar (edu.cmu.meteor: Normalizer, Aligner, MeteorScorer, MeteorStats):
/// - `-norm` normalization (``MeteorNormalizer``), lower-casing, whitespace tokens;
/// - matching stages in order: exact (weight 1.0), then Snowball-English stem (weight 0.6) for
///   words whose surface forms differ (``EnglishStemmer``); identical sentences use exact only;
/// - the alignment: one-to-one matches that cover uncontested words are fixed, the rest is
///   resolved by the jar's left-to-right beam search (beam 40) ranked by most matched words, then
///   fewest chunks, then least total distance — with its integer truncation of the 0.5 ranking
///   weight it gives non-exact matches (so stem matches only ever win by making fewer chunks) and
///   its habit of adding a rejected alternative's distance to the path that skips it;
/// - function words (the jar's 93-word English list) weighted by 1 − δ, content words by δ;
/// - Fmean = P·R / (α·P + (1 − α)·R) on weighted matches and lengths, fragmentation penalty
///   γ·(chunks / mean matched words)^β (zero when both sides match entirely in one chunk),
///   score = Fmean·(1 − penalty), NaN → 0; parameters α 0.85, β 0.2, γ 0.6, δ 0.75 (English, ranking task);
/// - per caption, the reference giving the highest score (first one on ties); the corpus score is
///   computed from the summed statistics of all captions (pycocoevalcap's EVAL line), not as a mean,
///   where a caption matched entirely in one chunk contributes no chunk (MeteorStats.addStats).
///
/// Not implemented: the WordNet synonym module (weight 0.8) and the paraphrase module (weight 0.6),
/// whose data (WordNet and a 60 MB paraphrase table) are not part of this project. Where a caption
/// uses a synonym or paraphrase of a reference word, METEOR here differs from pycocoevalcap's
/// default. Measured on the 220-image fixture (Tests/TasksTests/Resources, written by
/// tools/fixtures/caption_metrics.py): the jar with all four modules gives 0.238211, the jar with
/// exact + stem 0.234815, and this implementation 0.234815 (its per-image statistics equal the
/// jar's exact + stem ones): a corpus gap of −0.0034 (−1.4 % relative) to pycocoevalcap. Per image
/// the two agree exactly for 75 % of the images; the mean |difference| is 0.010, the 90th percentile
/// 0.038, the largest 0.47 (a five-word prediction whose verb, "peel", is a synonym of the
/// reference's "skin"); per image it can also come out higher (by up to 0.05), as the extra modules
/// change which alignment and reference win.
/// Words are compared as strings (the jar compares Java hash codes, which differ only on hash collisions).
public enum Meteor {
    public struct Parameters: Sendable {
        public var alpha = 0.85
        public var beta = 0.2
        public var gamma = 0.6
        public var delta = 0.75
        /// Module weights for scoring: exact, stem.
        public var exactWeight = 1.0
        public var stemWeight = 0.6
        public var beamSize = 40
        public init() {}
    }

    /// Modules, in matching order.
    enum Module: Int { case exact = 0, stem = 1 }
    static let moduleCount = 2

    /// METEOR's sufficient statistics for one caption (or summed over a corpus).
    public struct Stats: Sendable, Equatable {
        public var testLength = 0.0
        public var referenceLength = 0.0
        public var testFunctionWords = 0.0
        public var referenceFunctionWords = 0.0
        /// Per module (exact, stem): matched content / function words on each side.
        public var testStageMatchesContent = [Double](repeating: 0, count: moduleCount)
        public var referenceStageMatchesContent = [Double](repeating: 0, count: moduleCount)
        public var testStageMatchesFunction = [Double](repeating: 0, count: moduleCount)
        public var referenceStageMatchesFunction = [Double](repeating: 0, count: moduleCount)
        public var chunks = 0.0
        public var testWordMatches = 0.0
        public var referenceWordMatches = 0.0

        public var testTotalMatches: Double { zip(testStageMatchesContent, testStageMatchesFunction).reduce(0) { $0 + $1.0 + $1.1 } }
        public var referenceTotalMatches: Double {
            zip(referenceStageMatchesContent, referenceStageMatchesFunction).reduce(0) { $0 + $1.0 + $1.1 }
        }

        public mutating func add(_ o: Stats) {
            testLength += o.testLength
            referenceLength += o.referenceLength
            testFunctionWords += o.testFunctionWords
            referenceFunctionWords += o.referenceFunctionWords
            for k in 0..<moduleCount {
                testStageMatchesContent[k] += o.testStageMatchesContent[k]
                referenceStageMatchesContent[k] += o.referenceStageMatchesContent[k]
                testStageMatchesFunction[k] += o.testStageMatchesFunction[k]
                referenceStageMatchesFunction[k] += o.referenceStageMatchesFunction[k]
            }
            // MeteorStats.addStats: a caption matched entirely, in one chunk, adds no chunk to the
            // sum (its fragmentation is zero), so perfect captions do not fragment the corpus.
            if !(o.testTotalMatches == o.testLength && o.referenceTotalMatches == o.referenceLength && o.chunks == 1) {
                chunks += o.chunks
            }
            testWordMatches += o.testWordMatches
            referenceWordMatches += o.referenceWordMatches
        }
    }

    /// Scores tokenized captions (pycocoevalcap's tokenizer output) against their references.
    public static func score(hypotheses: [String], references: [[String]], parameters: Parameters = Parameters())
        -> (corpus: Double, perImage: [Double], stats: [Stats]) {
        precondition(hypotheses.count == references.count, "one hypothesis per image")
        var scorer = Scorer(parameters: parameters)
        var total = Stats()
        var perImage: [Double] = []
        var stats: [Stats] = []
        for (hyp, refs) in zip(hypotheses, references) {
            let st = scorer.segmentStats(hypothesis: hyp, references: refs)
            total.add(st)
            stats.append(st)
            perImage.append(computeScore(st, parameters))
        }
        return (computeScore(total, parameters), perImage, stats)
    }

    /// MeteorScorer.computeMetrics: the score from sufficient statistics.
    public static func computeScore(_ s: Stats, _ p: Parameters) -> Double {
        let weights = [p.exactWeight, p.stemWeight]
        let testWeightedLength = p.delta * (s.testLength - s.testFunctionWords) + (1 - p.delta) * s.testFunctionWords
        let refWeightedLength = p.delta * (s.referenceLength - s.referenceFunctionWords) + (1 - p.delta) * s.referenceFunctionWords
        var testWeightedMatches = 0.0
        var refWeightedMatches = 0.0
        for k in 0..<moduleCount { testWeightedMatches += s.testStageMatchesContent[k] * weights[k] * p.delta }
        for k in 0..<moduleCount { refWeightedMatches += s.referenceStageMatchesContent[k] * weights[k] * p.delta }
        for k in 0..<moduleCount { testWeightedMatches += s.testStageMatchesFunction[k] * weights[k] * (1 - p.delta) }
        for k in 0..<moduleCount { refWeightedMatches += s.referenceStageMatchesFunction[k] * weights[k] * (1 - p.delta) }
        let precision = testWeightedMatches / testWeightedLength
        let recall = refWeightedMatches / refWeightedLength
        let fMean = 1.0 / (((1.0 - p.alpha) / precision) + (p.alpha / recall))
        let frag: Double
        if s.testTotalMatches == s.testLength && s.referenceTotalMatches == s.referenceLength && s.chunks == 1 {
            frag = 0
        } else {
            frag = s.chunks / ((s.testWordMatches + s.referenceWordMatches) / 2)
        }
        let fragPenalty = p.gamma * pow(frag, p.beta)
        let score = fMean * (1.0 - fragPenalty)
        return score.isNaN ? 0 : max(score, 0)
    }

    /// The jar's 93 English function words (function/english.words).
    static let functionWords: Set<String> = [
        "the", ",", ".", "to", "of", "and", "a", "in", "that", "for", "\"", "is", "on", "'s", "it", "with", "was", "as",
        "said", "at", "he", "by", "be", "from", "have", "has", "are", "his", "but", "an", "this", "not", "i", "will",
        "\u{2019}", "they", ")", "-rrb-", "(", "-lrb-", "who", "their", "had", "we", "which", "were", "been", "more", "or",
        "s", "its", "would", "about", "new", "one", "after", "you", ":", "also", "up", "when", "there", "than", "$", "all",
        "out", "her", "people", "she", "year", "two", "-", "can", "if", "last", "first", "\u{201C}", "over", "other",
        "\u{201D}", "into", "some", "what", "so", "--", "no", "time", "years", "could", "?", "'t", "\u{2014}", "'",
    ]

    /// Splits pycocoevalcap's SCORE line the way the jar does (String.split on "|||", trailing empty
    /// parts dropped, each part trimmed): returns (references, hypothesis).
    static func scoreLineParts(hypothesis: String, references: [String]) -> ([String], String)? {
        // pycocoevalcap: hypothesis_str.replace('|||','').replace('  ',' ')
        let hyp = hypothesis.replacingOccurrences(of: "|||", with: "").replacingOccurrences(of: "  ", with: " ")
        let line = (["SCORE", references.joined(separator: " ||| "), hyp]).joined(separator: " ||| ")
        var parts = line.components(separatedBy: "|||")
        while let last = parts.last, last.isEmpty { parts.removeLast() }
        guard parts.count >= 3 else { return nil }
        return (parts[1..<(parts.count - 1)].map { $0.trimmingJavaWhitespace() }, parts[parts.count - 1].trimmingJavaWhitespace())
    }

    /// Stateful scorer: caches stems (words repeat a lot across captions).
    struct Scorer {
        let parameters: Parameters
        var stemCache: [String: String] = [:]

        init(parameters: Parameters) { self.parameters = parameters }

        mutating func stem(_ w: String) -> String {
            if let s = stemCache[w] { return s }
            let s = EnglishStemmer.stem(w)
            stemCache[w] = s
            return s
        }

        static func words(_ line: String) -> [String] {
            // -norm, lower-case, then java.util.StringTokenizer's default delimiters
            MeteorNormalizer.normalize(line).lowercased()
                .split(whereSeparator: { " \t\n\r\u{000C}".contains($0) }).map(String.init)
        }

        /// MeteorScorer.getMeteorStats(test, references): the statistics of the best reference.
        mutating func segmentStats(hypothesis: String, references: [String]) -> Stats {
            guard let (refs, hyp) = Meteor.scoreLineParts(hypothesis: hypothesis, references: references) else { return Stats() }
            let test = Self.words(hyp)
            var best = Stats()
            var bestScore = -1.0
            for ref in refs {
                let st = alignmentStats(test: test, reference: Self.words(ref))
                let score = Meteor.computeScore(st, parameters)
                if score > bestScore {
                    best = st
                    bestScore = score
                }
            }
            return best
        }

        mutating func alignmentStats(test: [String], reference: [String]) -> Stats {
            let matches = align(test, reference)
            var st = Stats()
            st.testLength = Double(test.count)
            st.referenceLength = Double(reference.count)
            let function1 = test.map { Meteor.functionWords.contains($0.lowercased()) }
            let function2 = reference.map { Meteor.functionWords.contains($0.lowercased()) }
            st.testFunctionWords = Double(function1.filter { $0 }.count)
            st.referenceFunctionWords = Double(function2.filter { $0 }.count)
            for m in matches.compactMap({ $0 }) {
                if function1[m.matchStart] { st.testStageMatchesFunction[m.module] += 1 } else { st.testStageMatchesContent[m.module] += 1 }
                if function2[m.start] { st.referenceStageMatchesFunction[m.module] += 1 } else { st.referenceStageMatchesContent[m.module] += 1 }
            }
            st.testWordMatches = st.testTotalMatches
            st.referenceWordMatches = st.referenceTotalMatches
            st.chunks = Double(Self.countChunks(matches))
            return st
        }

        /// Aligner.getCountAndChunks: chunks of the final alignment, walking the reference.
        static func countChunks(_ matches: [Match?]) -> Int {
            var chunks = 0
            var idx = 0
            var lastMatchEnd = -1
            while idx < matches.count {
                guard let m = matches[idx] else {
                    if lastMatchEnd != -1 { chunks += 1; lastMatchEnd = -1 }
                    idx += 1
                    continue
                }
                if lastMatchEnd != -1 && m.matchStart != lastMatchEnd { chunks += 1 }
                idx = m.start + 1
                lastMatchEnd = m.matchStart + 1
            }
            if lastMatchEnd != -1 { chunks += 1 }
            return chunks
        }

        /// Aligner.align: candidate matches per module, fixed uncontested matches, beam search.
        /// Returns, for each reference position, its match (or nil).
        mutating func align(_ words1: [String], _ words2: [String]) -> [Match?] {
            var candidates = [[Match]](repeating: [], count: words2.count)
            var coverage1 = [Int](repeating: 0, count: words1.count)
            var coverage2 = [Int](repeating: 0, count: words2.count)
            // Identical sentences: exact matches only (the jar avoids beam-search errors this way).
            let modules = words1 == words2 ? 1 : Meteor.moduleCount
            for j in 0..<words2.count {
                for i in 0..<words1.count where words1[i] == words2[j] {
                    candidates[j].append(Match(start: j, matchStart: i, module: Module.exact.rawValue))
                    coverage1[i] += 1
                    coverage2[j] += 1
                }
            }
            if modules > 1 {
                let stems1 = words1.map { stem($0) }
                let stems2 = words2.map { stem($0) }
                for j in 0..<words2.count {
                    for i in 0..<words1.count where stems1[i] == stems2[j] && words1[i] != words2[j] {
                        candidates[j].append(Match(start: j, matchStart: i, module: Module.stem.rawValue))
                        coverage1[i] += 1
                        coverage2[j] += 1
                    }
                }
            }
            let start = PartialAlignment(count1: words1.count, count2: words2.count)
            // One-to-one, non-overlapping matches are definite.
            for j in 0..<words2.count where candidates[j].count == 1 {
                let m = candidates[j][0]
                if coverage2[j] == 1 && coverage1[m.matchStart] == 1 {
                    start.matches[j] = m
                    start.used2[j] = true
                    start.used1[m.matchStart] = true
                }
            }
            return resolve(candidates, start).matches
        }

        /// Aligner.resolve: the beam search, reproduced step by step (including which path object
        /// each update lands on: paths are shared references in the jar).
        func resolve(_ candidates: [[Match]], _ start: PartialAlignment) -> PartialAlignment {
            // Ranking weights: 1.0 for exact, 0.5 for the other modules (MeteorScorer sets them).
            let rankWeights = [1.0, 0.5]
            func add(_ count: Int, _ m: Match) -> Int { Int(Double(count) + rankWeights[m.module]) }  // Java int += double
            var nextPaths = [start]
            for current in 0...candidates.count {
                let paths = Self.stableSorted(nextPaths)
                nextPaths = []
                for path in paths.prefix(parameters.beamSize) {
                    if current == candidates.count {
                        if path.lastMatchEnd != -1 { path.chunks += 1 }
                        nextPaths.append(path)
                        continue
                    }
                    if path.used2[current] {
                        if current < path.idx {
                            nextPaths.append(path)
                        } else if let m = path.matches[path.idx] {
                            path.matchCount += 1
                            path.matches1 = add(path.matches1, m)
                            path.matches2 = add(path.matches2, m)
                            path.allMatches1 += 1
                            path.allMatches2 += 1
                            if path.lastMatchEnd != -1 && m.matchStart != path.lastMatchEnd { path.chunks += 1 }
                            path.idx = m.start + 1
                            path.lastMatchEnd = m.matchStart + 1
                            path.distance += abs(m.start - m.matchStart)
                            nextPaths.append(path)
                        }
                        continue
                    }
                    for m in candidates[current] where !path.used2[m.start] && !path.used1[m.matchStart] {
                        let newPath = path.copy()
                        newPath.used2[m.start] = true
                        newPath.used1[m.matchStart] = true
                        newPath.matches[current] = m
                        newPath.matchCount += 1
                        newPath.matches1 = add(newPath.matches1, m)
                        newPath.matches2 = add(newPath.matches2, m)
                        newPath.allMatches1 += 1
                        newPath.allMatches2 += 1
                        if newPath.lastMatchEnd != -1 && m.matchStart != newPath.lastMatchEnd { newPath.chunks += 1 }
                        newPath.idx = m.start + 1
                        newPath.lastMatchEnd = m.matchStart + 1
                        path.distance += abs(m.start - m.matchStart)  // sic: the jar updates the parent path
                        nextPaths.append(newPath)
                    }
                    // Try skipping this reference word.
                    if path.lastMatchEnd != -1 {
                        path.chunks += 1
                        path.lastMatchEnd = -1
                    }
                    path.idx += 1
                    nextPaths.append(path)
                }
                if nextPaths.isEmpty, let first = paths.first { nextPaths.append(first) }
            }
            return Self.stableSorted(nextPaths)[0]
        }

        /// Collections.sort with PARTIAL_COMPARE_TOTAL: more (weighted) matches, then fewer chunks,
        /// then smaller distance; stable.
        static func stableSorted(_ paths: [PartialAlignment]) -> [PartialAlignment] {
            paths.enumerated().sorted { a, b in
                let x = a.element, y = b.element
                let mx = x.matches1 + x.matches2, my = y.matches1 + y.matches2
                if mx != my { return mx > my }
                if x.chunks != y.chunks { return x.chunks < y.chunks }
                if x.distance != y.distance { return x.distance < y.distance }
                return a.offset < b.offset
            }.map(\.element)
        }
    }

    /// A one-word match: reference word `start` ↔ test word `matchStart` (exact and stem matches
    /// always span one word on each side).
    struct Match {
        var start: Int
        var matchStart: Int
        var module: Int
    }

    /// A search path of the aligner (a class: the jar mutates paths shared between lists).
    final class PartialAlignment {
        var matches: [Match?]
        var used1: [Bool]
        var used2: [Bool]
        var matchCount = 0
        var matches1 = 0
        var matches2 = 0
        var allMatches1 = 0
        var allMatches2 = 0
        var chunks = 0
        var idx = 0
        var lastMatchEnd = -1
        var distance = 0

        init(count1: Int, count2: Int) {
            matches = [Match?](repeating: nil, count: count2)
            used1 = [Bool](repeating: false, count: count1)
            used2 = [Bool](repeating: false, count: count2)
        }

        private init(_ o: PartialAlignment) {
            matches = o.matches
            used1 = o.used1
            used2 = o.used2
            matchCount = o.matchCount
            matches1 = o.matches1
            matches2 = o.matches2
            allMatches1 = o.allMatches1
            allMatches2 = o.allMatches2
            chunks = o.chunks
            idx = o.idx
            lastMatchEnd = o.lastMatchEnd
            distance = o.distance
        }

        func copy() -> PartialAlignment { PartialAlignment(self) }
    }
}
