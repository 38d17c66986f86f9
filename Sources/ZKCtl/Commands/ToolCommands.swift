import Foundation
import ZooKeeper

extension CommandTable {
    static let toolCommands: [CommandSpec] = []
}
