// The JSON model lives in ZooKeeper (the AdminServer's answers are read with it there); a program
// that imports only the recipes library still names it as before.
@_exported import enum ZooKeeper.JSONValue
@_exported import struct ZooKeeper.JSONObject
@_exported import struct ZooKeeper.JSONParseError
@_exported import struct ZooKeeper.JSONPathError
