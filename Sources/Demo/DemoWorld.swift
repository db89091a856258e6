import Tensor

/// The world of the built-in demo corpus: cooking verbs with a motion each, ingredients with a
/// look each, and dishes whose steps follow a grammar (so the next step is predictable, not certain).
public enum DemoWorld {
    /// A cooking action and the motion that shows it on screen.
    public enum Verb: String, CaseIterable, Sendable, Codable {
        case stir, cut, pour, flip, shake, roll, mash, peel, sprinkle, whisk, slice, boil
    }

    public enum Shape: Int, CaseIterable, Sendable { case circle, square, triangle, diamond, hexagon, star, wide, tall, ring, cross, crescent, drop }
    public enum Texture: Int, CaseIterable, Sendable { case solid, stripes, dots, checker, radial }

    /// An ingredient: its name as narrated (plural form for "the tomatoes"), shape, colours, texture.
    public struct Ingredient: Sendable, Equatable {
        public var name: String
        public var plural: String
        public var shape: Shape
        public var primary: (UInt8, UInt8, UInt8)
        public var secondary: (UInt8, UInt8, UInt8)
        public var texture: Texture
        public static func == (a: Ingredient, b: Ingredient) -> Bool { a.name == b.name }
    }

    static func ing(_ name: String, _ plural: String, _ shape: Shape, _ p: (UInt8, UInt8, UInt8), _ s: (UInt8, UInt8, UInt8), _ t: Texture) -> Ingredient {
        Ingredient(name: name, plural: plural, shape: shape, primary: p, secondary: s, texture: t)
    }

    /// 32 ingredients. Shapes, colours and textures are combined so that no two look alike.
    public static let ingredients: [Ingredient] = [
        ing("tomato", "tomatoes", .circle, (220, 40, 30), (60, 160, 50), .solid),
        ing("onion", "onions", .circle, (200, 170, 120), (240, 230, 210), .stripes),
        ing("carrot", "carrots", .tall, (240, 120, 20), (40, 140, 40), .stripes),
        ing("potato", "potatoes", .wide, (180, 140, 80), (110, 80, 40), .dots),
        ing("egg", "eggs", .drop, (245, 240, 225), (250, 200, 40), .solid),
        ing("butter", "butter", .square, (250, 225, 120), (255, 245, 180), .solid),
        ing("flour", "flour", .square, (240, 240, 235), (200, 200, 195), .dots),
        ing("sugar", "sugar", .diamond, (250, 250, 250), (180, 200, 230), .checker),
        ing("salt", "salt", .hexagon, (230, 235, 240), (150, 150, 160), .dots),
        ing("pepper", "pepper", .hexagon, (60, 55, 50), (120, 110, 100), .dots),
        ing("garlic", "garlic", .drop, (235, 225, 200), (190, 170, 140), .stripes),
        ing("lemon", "lemons", .wide, (250, 230, 40), (250, 250, 180), .radial),
        ing("apple", "apples", .circle, (160, 200, 40), (220, 60, 40), .radial),
        ing("banana", "bananas", .crescent, (250, 220, 60), (120, 90, 30), .solid),
        ing("cheese", "cheese", .triangle, (250, 200, 60), (230, 160, 30), .dots),
        ing("bread", "bread", .square, (200, 140, 70), (240, 210, 160), .radial),
        ing("rice", "rice", .ring, (245, 245, 240), (210, 205, 190), .dots),
        ing("pasta", "pasta", .cross, (240, 210, 120), (200, 160, 80), .stripes),
        ing("chicken", "chicken", .drop, (240, 190, 150), (200, 130, 90), .checker),
        ing("beef", "beef", .square, (150, 30, 40), (230, 200, 200), .stripes),
        ing("fish", "fish", .wide, (150, 170, 190), (220, 120, 100), .checker),
        ing("mushroom", "mushrooms", .crescent, (160, 120, 90), (230, 220, 200), .dots),
        ing("spinach", "spinach", .star, (30, 110, 40), (90, 170, 70), .stripes),
        ing("lettuce", "lettuce", .ring, (120, 200, 80), (200, 240, 160), .radial),
        ing("cucumber", "cucumbers", .tall, (40, 120, 50), (190, 230, 160), .dots),
        ing("corn", "corn", .tall, (250, 210, 40), (140, 180, 60), .checker),
        ing("beans", "beans", .drop, (120, 40, 30), (200, 120, 100), .solid),
        ing("milk", "milk", .square, (250, 250, 255), (120, 160, 230), .stripes),
        ing("oil", "oil", .drop, (220, 200, 60), (250, 240, 150), .radial),
        ing("honey", "honey", .hexagon, (220, 150, 20), (250, 200, 80), .radial),
        ing("chocolate", "chocolate", .square, (90, 50, 30), (150, 100, 60), .checker),
        ing("strawberry", "strawberries", .triangle, (230, 30, 60), (250, 240, 120), .dots),
    ]

    public static func ingredient(_ name: String) -> Ingredient {
        ingredients.first { $0.name == name }!
    }

    /// One slot of a dish's grammar: a verb applied to one of several ingredients, present with
    /// probability `p`.
    public struct Slot: Sendable {
        public var verbs: [Verb]
        public var objects: [String]
        public var p: Double
    }

    /// A dish: its name and its step grammar, in order.
    public struct Dish: Sendable {
        public var name: String
        public var slots: [Slot]
    }

    static func s(_ v: [Verb], _ o: [String], _ p: Double = 1) -> Slot { Slot(verbs: v, objects: o, p: p) }

    public static let dishes: [Dish] = [
        Dish(name: "tomato soup", slots: [
            s([.cut, .slice], ["onion", "garlic"]), s([.cut], ["tomato"]), s([.pour], ["oil"], 0.7),
            s([.boil], ["tomato"]), s([.stir], ["tomato", "onion"]), s([.sprinkle], ["salt", "pepper"]),
        ]),
        Dish(name: "salad", slots: [
            s([.peel], ["cucumber", "carrot"], 0.6), s([.slice, .cut], ["cucumber", "tomato", "lettuce"]),
            s([.cut], ["lettuce", "spinach"]), s([.pour], ["oil"]), s([.sprinkle], ["salt", "pepper"]), s([.shake], ["lettuce"], 0.6),
        ]),
        Dish(name: "omelette", slots: [
            s([.whisk], ["egg"]), s([.pour], ["milk"], 0.6), s([.sprinkle], ["salt", "pepper"]),
            s([.pour], ["egg"]), s([.flip], ["egg"]), s([.sprinkle], ["cheese"], 0.5),
        ]),
        Dish(name: "pancakes", slots: [
            s([.pour], ["flour"]), s([.pour], ["milk"]), s([.whisk], ["egg"]), s([.stir], ["flour"]),
            s([.flip], ["bread"]), s([.pour], ["honey"], 0.7),
        ]),
        Dish(name: "mashed potatoes", slots: [
            s([.peel], ["potato"]), s([.cut], ["potato"]), s([.boil], ["potato"]), s([.mash], ["potato"]),
            s([.stir], ["butter", "milk"]), s([.sprinkle], ["salt", "pepper"]),
        ]),
        Dish(name: "stir fry", slots: [
            s([.slice, .cut], ["chicken", "beef"]), s([.slice], ["carrot", "mushroom"]), s([.pour], ["oil"]),
            s([.stir], ["chicken", "beef"]), s([.shake], ["mushroom", "corn"]), s([.sprinkle], ["pepper"], 0.6),
        ]),
        Dish(name: "pasta", slots: [
            s([.boil], ["pasta"]), s([.cut], ["tomato", "mushroom"]), s([.slice], ["garlic"], 0.6),
            s([.pour], ["oil"]), s([.stir], ["pasta"]), s([.sprinkle], ["cheese"]),
        ]),
        Dish(name: "fruit smoothie", slots: [
            s([.peel], ["banana"]), s([.cut, .slice], ["strawberry", "apple"]), s([.pour], ["milk"]),
            s([.pour], ["honey"], 0.5), s([.shake], ["banana", "strawberry"]), s([.pour], ["milk"], 0.4),
        ]),
        Dish(name: "sandwich", slots: [
            s([.slice], ["bread"]), s([.roll], ["butter"], 0.5), s([.slice], ["cheese", "tomato"]),
            s([.cut], ["lettuce"], 0.7), s([.flip], ["bread"]), s([.cut], ["bread"]),
        ]),
        Dish(name: "chocolate cake", slots: [
            s([.pour], ["flour"]), s([.pour], ["sugar"]), s([.whisk], ["egg"]), s([.stir], ["chocolate"]),
            s([.roll], ["chocolate"], 0.5), s([.sprinkle], ["sugar"]),
        ]),
        Dish(name: "fried rice", slots: [
            s([.boil], ["rice"]), s([.cut], ["carrot", "onion"]), s([.whisk], ["egg"]), s([.pour], ["oil"]),
            s([.stir], ["rice"]), s([.shake], ["corn", "beans"]),
        ]),
        Dish(name: "fish tacos", slots: [
            s([.cut], ["fish"]), s([.sprinkle], ["pepper", "salt"]), s([.flip], ["fish"]), s([.slice], ["lemon"]),
            s([.roll], ["bread"]), s([.mash], ["beans"], 0.6),
        ]),
    ]

    /// One step of a rendered recipe.
    public struct Step: Sendable, Equatable, Codable {
        public var verb: Verb
        public var object: String
        public init(verb: Verb, object: String) { self.verb = verb; self.object = object }
    }

    /// Samples a recipe of `dish`: each slot present with its probability, one verb and one object
    /// drawn uniformly; at least three steps.
    public static func sampleSteps(_ dish: Dish, rng: inout SeededRNG) -> [Step] {
        while true {
            var steps: [Step] = []
            for slot in dish.slots where rng.nextDouble() < slot.p {
                steps.append(Step(verb: slot.verbs[rng.nextInt(slot.verbs.count)], object: slot.objects[rng.nextInt(slot.objects.count)]))
            }
            if steps.count >= 3 { return steps }
        }
    }
}
