//go:build !amd64

package b3tree

// subtreeCVSIMD has no kernel on this architecture.
func subtreeCVSIMD(buf []byte, counter uint64) (cv [8]uint32, ok bool) {
	return cv, false
}

// chunkCVsSIMD has no kernel on this architecture.
func chunkCVsSIMD(cvs *[16][8]uint32, buf []byte, counter uint64) bool {
	return false
}
