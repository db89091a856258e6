import XCTest
@testable import Recipe

struct Inner: Codable, Equatable { var branching = 12; var depth = 4; var rate = 0.5 }
struct Sample: RecipeSection, Equatable {
    var fps: Double = 20
    var name = "default"
    var enabled = true
    var sizes: [Int] = [1, 2]
    var kmeans = Inner()
    init() {}
}

final class RecipeTests: XCTestCase {
    func testDefaultsAndOverrides() throws {
        let r = try RecipeLoader.load(Sample.self, yaml: "fps: 10\nkmeans:\n  depth: 2\n", name: "r.yaml",
                                      overrides: ["kmeans.branching=3", "name=42", "sizes=[4, 5, 6]"])
        XCTAssertEqual(r.fps, 10)
        XCTAssertEqual(r.kmeans, Inner(branching: 3, depth: 2, rate: 0.5))
        XCTAssertEqual(r.name, "42", "a string field keeps numeric-looking text")
        XCTAssertEqual(r.sizes, [4, 5, 6])
        XCTAssertEqual(try RecipeLoader.load(Sample.self, yaml: ""), Sample())
    }

    func testUnknownKeyNamesKeyFileAndLine() {
        XCTAssertThrowsError(try RecipeLoader.load(Sample.self, yaml: "fps: 10\nkmeans:\n  dept: 2\n", name: "r.yaml")) { e in
            let s = "\(e)"
            XCTAssertTrue(s.hasPrefix("r.yaml: line 3: unknown key 'kmeans.dept'"), s)
        }
        XCTAssertThrowsError(try RecipeLoader.load(Sample.self, yaml: "", overrides: ["nope=1"])) { e in
            XCTAssertTrue("\(e)".contains("unknown key 'nope'"), "\(e)")
        }
    }

    func testWrongTypeIsNamed() {
        XCTAssertThrowsError(try RecipeLoader.load(Sample.self, yaml: "fps: fast\n", name: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("'fps' must be a number, not a string"), "\(e)")
        }
        XCTAssertThrowsError(try RecipeLoader.load(Sample.self, yaml: "kmeans:\n  depth: 2.5\n", name: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("kmeans.depth"), "\(e)")
        }
        XCTAssertThrowsError(try RecipeLoader.load(Sample.self, yaml: "fps: [1\n", name: "r.yaml")) { e in
            XCTAssertTrue("\(e)".hasPrefix("r.yaml: YAML"), "\(e)")
        }
    }

    func testResolvedYAMLRoundTrips() throws {
        var s = Sample(); s.fps = 7.5; s.kmeans.depth = 1
        let text = try RecipeLoader.yaml(s)
        XCTAssertEqual(try RecipeLoader.load(Sample.self, yaml: text), s)
    }
}
