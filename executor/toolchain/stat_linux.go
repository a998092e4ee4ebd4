package toolchain

import (
	"os"
	"syscall"
)

// statOf fills what the file system says of a file whose content it does
// not read: a change to the file changes one of these.
func statOf(fi os.FileInfo) fileStat {
	s := fileStat{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode())}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.Ino, s.Dev, s.CtimeNs = st.Ino, uint64(st.Dev), st.Ctim.Nano()
	}
	return s
}
