import Foundation
import ZooKeeper

extension CommandTable {
    static let backupCommands: [CommandSpec] = []
}
