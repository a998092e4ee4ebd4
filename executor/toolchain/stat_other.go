//go:build !linux

package toolchain

import "os"

// statOf fills what the file system says of a file. Outside Linux only
// size, mode and mtime are used: cogumi builds run on Linux, and this only
// keeps the package compiling elsewhere.
func statOf(fi os.FileInfo) fileStat {
	return fileStat{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode())}
}
