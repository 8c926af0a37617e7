import Foundation

/// What effconvert wrote beside the model: labels, preprocessing and provenance.
/// Nothing about the model is hard-coded in the app; it all comes from here.
struct ModelManifest: Decodable {
    struct Preprocessing: Decodable {
        let inputSize: [Int]          // [C, H, W]
        let mean: [Float]
        let std: [Float]
        let cropPct: Float
        let interpolation: String
        let normalization: String     // "in-model" for image inputs: feed raw RGB pixels

        enum CodingKeys: String, CodingKey {
            case inputSize = "input_size", mean, std, cropPct = "crop_pct", interpolation, normalization
        }
    }

    let arch: String
    let quant: String
    let target: String
    let artifact: String
    let sha256: String
    let inputName: String
    let inputLayout: String
    let outputName: String
    let labels: [String]
    let preprocessing: Preprocessing
    let weights: String

    enum CodingKeys: String, CodingKey {
        case arch, quant, target, artifact, sha256, labels, preprocessing, weights
        case inputName = "input_name", inputLayout = "input_layout", outputName = "output_name"
    }

    static func load(from bundle: Bundle = .main) throws -> ModelManifest {
        guard let url = bundle.url(forResource: "manifest", withExtension: "json") else {
            throw ClassifierError.missingResource("manifest.json")
        }
        return try JSONDecoder().decode(ModelManifest.self, from: Data(contentsOf: url))
    }
}
