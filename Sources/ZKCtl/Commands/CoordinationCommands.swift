import Foundation
import ZooKeeper

extension CommandTable {
    static let coordinationCommands: [CommandSpec] = []
}
