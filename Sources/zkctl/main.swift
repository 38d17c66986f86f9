import Foundation
import ZKCtl

exit(await ZKCtl.run(Array(CommandLine.arguments.dropFirst())))
