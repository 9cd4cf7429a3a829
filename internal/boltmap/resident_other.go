//go:build !linux

package boltmap

import "errors"

// Resident is only implemented on Linux.
func Resident(path string) (int64, error) {
	return 0, errors.ErrUnsupported
}
