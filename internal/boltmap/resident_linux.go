package boltmap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Resident returns how many bytes of the file at path this process has
// mapped and resident (the Rss of its mappings in /proc/self/smaps): what
// Release is for. It serves diagnosis and tests.
func Resident(path string) (int64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("boltmap: %w", err)
	}
	var total int64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		// A mapping's header: "start-end perms offset dev inode [path]".
		if bytes.IndexByte(fields[0], '-') > 0 && !bytes.HasSuffix(fields[0], []byte(":")) {
			in = len(fields) >= 6 && mappedPath(line) == abs
			continue
		}
		if in && string(fields[0]) == "Rss:" && len(fields) >= 2 {
			kb, err := strconv.ParseInt(string(fields[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("boltmap: smaps: %w", err)
			}
			total += kb << 10
		}
	}
	return total, sc.Err()
}

// mappedPath is the path at the end of a mapping's header line: whatever
// follows the fifth field, spaces included.
func mappedPath(line []byte) string {
	rest := line
	for range 5 {
		rest = bytes.TrimLeft(rest, " ")
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			return ""
		}
		rest = rest[i:]
	}
	return string(bytes.TrimSpace(rest))
}
