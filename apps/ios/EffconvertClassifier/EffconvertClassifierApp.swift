import SwiftUI

/// Sample app: classifies camera frames or a picked photo with the Core ML model that
/// `effconvert app ios` embedded (Model.mlpackage + manifest.json in this folder).
@main
struct EffconvertClassifierApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
