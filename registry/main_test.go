package registry_test

import (
	"os"
	"testing"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestMain removes the rosterd binary TestRestartTimeManyKeys builds.
func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
