import Foundation
import ZooKeeper

extension CommandTable {
    static let configCommands: [CommandSpec] = []
}
