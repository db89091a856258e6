import XCTest
import Recipe
@testable import Tokenize

/// Tokenize settings whose products would size giant allocations are refused, naming the keys
/// (docs/RELIABILITY.md, "recipes").
final class TokenizeRecipeLimitTests: XCTestCase {
    func problem(_ sets: [String]) throws -> String? {
        try RecipeLoader.load(TokenizeRecipe.self, yaml: "", name: "r.yaml", overrides: sets).problem()
    }

    func testProductsOfSettingsAreBounded() throws {
        XCTAssertNil(try problem([]))
        XCTAssertEqual(try problem(["kmeans.branching=65536", "kmeans.depth=16"]),
                       "kmeans.branching ^ kmeans.depth (the visual words) must be at most 16777216")
        XCTAssertEqual(try problem(["frames.size=99999999999x99999999999"]), "frames.size must be at most 16384 on a side and 2^26 pixels")
        XCTAssertEqual(try problem(["frames.size=16384x8192"]), "frames.size must be at most 16384 on a side and 2^26 pixels")
        XCTAssertEqual(try problem(["frames.fps=1000", "frames.clip_seconds=3600"]),
                       "frames.fps × frames.clip_seconds frames of frames.size make more than 2 GiB per clip")
        XCTAssertEqual(try problem(["store.frames=true", "store.frame_size=1024", "store.frames_per_clip=1024"]),
                       "store.frames_per_clip × store.frame_size² × 3 must be at most 64 MiB per clip")
        XCTAssertThrowsError(try problem(["frames.fps=-1"])) { e in
            XCTAssertEqual("\(e)", "--set: 'frames.fps' is -1, must be in (0, 1000]")
        }
    }
}
