import PhotosUI
import SwiftUI

@MainActor
final class ClassifierViewModel: ObservableObject {
    @Published var computeChoice: ComputeChoice = .all { didSet { reload() } }
    @Published var result: ClassificationResult?
    @Published var errorText: String?
    @Published var pickedImage: UIImage?
    private(set) var classifier: Classifier?
    private var busy = false
    let camera = CameraModel()

    init() {
        reload()
        camera.onFrame = { [weak self] buffer in
            Task { @MainActor in self?.classifyFrame(buffer) }
        }
    }

    var title: String {
        guard let manifest = classifier?.manifest else { return "effconvert" }
        return "\(manifest.arch) · \(manifest.quant)"
    }

    func reload() {
        do {
            classifier = try Classifier(computeUnits: computeChoice.units)
            errorText = nil
        } catch {
            classifier = nil
            errorText = error.localizedDescription
        }
    }

    func classifyFrame(_ buffer: CVPixelBuffer) {
        guard pickedImage == nil, !busy, let classifier else { return }
        busy = true
        defer { busy = false }
        // Back camera frames arrive landscape; .right makes "up" the phone's portrait up.
        result = try? classifier.classify(pixelBuffer: buffer, orientation: .right)
    }

    func classify(photo: UIImage) {
        pickedImage = photo
        guard let classifier, let cgImage = photo.cgImage else { return }
        do {
            result = try classifier.classify(cgImage: cgImage, orientation: CGImagePropertyOrientation(photo.imageOrientation))
        } catch {
            errorText = error.localizedDescription
        }
    }
}

extension CGImagePropertyOrientation {
    init(_ orientation: UIImage.Orientation) {
        switch orientation {
        case .up: self = .up
        case .down: self = .down
        case .left: self = .left
        case .right: self = .right
        case .upMirrored: self = .upMirrored
        case .downMirrored: self = .downMirrored
        case .leftMirrored: self = .leftMirrored
        case .rightMirrored: self = .rightMirrored
        @unknown default: self = .up
        }
    }
}

struct ContentView: View {
    @StateObject private var model = ClassifierViewModel()
    @State private var photoItem: PhotosPickerItem?

    var body: some View {
        NavigationStack {
            VStack(spacing: 0) {
                ZStack {
                    if let image = model.pickedImage {
                        Image(uiImage: image).resizable().scaledToFit()
                    } else {
                        CameraPreview(session: model.camera.session)
                    }
                }
                .frame(maxWidth: .infinity, maxHeight: .infinity)
                .background(Color.black)
                ResultsView(result: model.result, errorText: model.errorText)
            }
            .navigationTitle(model.title)
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                ToolbarItem(placement: .navigationBarLeading) {
                    Picker("Compute", selection: $model.computeChoice) {
                        ForEach(ComputeChoice.allCases) { Text($0.rawValue).tag($0) }
                    }
                }
                ToolbarItem(placement: .navigationBarTrailing) {
                    HStack {
                        if model.pickedImage != nil {
                            Button("Camera") { model.pickedImage = nil }
                        }
                        PhotosPicker(selection: $photoItem, matching: .images) {
                            Image(systemName: "photo.on.rectangle")
                        }
                    }
                }
            }
            .onChange(of: photoItem) { item in
                Task {
                    if let data = try? await item?.loadTransferable(type: Data.self), let image = UIImage(data: data) {
                        model.classify(photo: image)
                    }
                }
            }
            .onAppear { model.camera.start() }
            .onDisappear { model.camera.stop() }
        }
    }
}

struct ResultsView: View {
    let result: ClassificationResult?
    let errorText: String?

    var body: some View {
        VStack(alignment: .leading, spacing: 6) {
            if let errorText {
                Text(errorText).foregroundStyle(.red)
            } else if let result {
                ForEach(result.top5) { prediction in
                    HStack {
                        Text(prediction.label).lineLimit(1)
                        Spacer()
                        Text(String(format: "%.1f%%", prediction.probability * 100)).monospacedDigit()
                    }
                }
                Text(String(format: "%.1f ms per inference", result.latencyMs))
                    .font(.footnote).foregroundStyle(.secondary)
            } else {
                Text("Point the camera at something, or pick a photo.").foregroundStyle(.secondary)
            }
        }
        .padding()
        .frame(maxWidth: .infinity, alignment: .leading)
    }
}
