import Foundation
import ZooKeeper

extension CommandTable {
    static let znodeCommands: [CommandSpec] = []
}
