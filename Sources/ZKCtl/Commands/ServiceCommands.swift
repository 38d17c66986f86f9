import Foundation
import ZooKeeper

extension CommandTable {
    static let serviceCommands: [CommandSpec] = []
}
