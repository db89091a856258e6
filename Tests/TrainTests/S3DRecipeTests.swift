import Foundation
import XCTest
import TestSupport
import Recipe
import Tokenize

/// Recipes/tokenize-videobert-s3d.yaml: the VideoBERT paper's visual pipeline with S3D features.
final class S3DRecipeTests: XCTestCase {
    func testVideoBertS3DRecipeIsThePapersPipeline() throws {
        let path = Repository.recipes + "/tokenize-videobert-s3d.yaml"
        let r = try RecipeLoader.load(TokenizeRecipe.self, file: path)
        XCTAssertNil(r.problem())
        XCTAssertEqual(r.features.source, "s3d-kinetics")
        XCTAssertTrue(TokenizeRecipe.backboneSources.contains(r.features.source))
        XCTAssertEqual(r.features.weights, "s3d-d76dad2f.pth")
        XCTAssertEqual(r.frames.fps, 20)
        XCTAssertEqual(r.framesPerClip, 30)              // 1.5 s clips of 30 frames
        XCTAssertEqual(r.kmeans.branching, 12)
        XCTAssertEqual(r.kmeans.depth, 4)                // 12⁴ = 20,736 visual words
        // Without weights the recipe is refused with the key named.
        var bare = r
        bare.features.weights = ""
        XCTAssertEqual(bare.problem(), "features.weights is required with features.source: s3d-kinetics")
    }
}

/// Recipes/tokenize-clip.yaml: CLIP rows kept raw for `retrieve --clip` and CBT.
final class CLIPRecipeTests: XCTestCase {
    func testCLIPRecipeKeepsRawRowsOfThePreset() throws {
        let r = try RecipeLoader.load(TokenizeRecipe.self, file: Repository.recipes + "/tokenize-clip.yaml")
        XCTAssertNil(r.problem())
        XCTAssertEqual(r.features.source, "clip-vit-b32")
        XCTAssertTrue(TokenizeRecipe.backboneSources.contains(r.features.source))
        XCTAssertEqual(r.features.center, "none")
        XCTAssertTrue(r.store.features)
        XCTAssertEqual(r.kmeans.branching, 12)
        XCTAssertEqual(r.kmeans.depth, 3)
    }
}
