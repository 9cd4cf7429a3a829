package registry

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// A member that is the only voter of its configuration need not wait out a
// heartbeat timeout to elect itself after a restart: nobody else can lead.
// hashicorp/raft has no "campaign now", but a follower whose heartbeat
// timeout is lowered by ReloadConfig checks for a leader at once, and with
// none (right after start) becomes a candidate; as the sole voter it wins
// its own vote immediately. So such a member starts raft with the heartbeat
// timeout a millisecond above the configured one and lowers it back right
// after. Members of larger clusters start as before: an early election
// there would only disturb a healthy leader.

// soleVoter reports whether the latest configuration in the log (or, when
// the log holds none after the newest snapshot, the snapshot's) has
// exactly one voter, this member. It reads the log backwards from its end
// to the first configuration entry, as raft does at start.
func (n *Node) soleVoter() (bool, error) {
	conf, err := n.latestConfiguration()
	if err != nil {
		return false, err
	}
	voters, self := 0, false
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || s.ID == raft.ServerID(n.cfg.ID)
		}
	}
	return voters == 1 && self, nil
}

func (n *Node) latestConfiguration() (raft.Configuration, error) {
	var snapIdx uint64
	var snapConf raft.Configuration
	list, err := n.snaps.List()
	if err != nil {
		return raft.Configuration{}, err
	}
	if len(list) > 0 {
		snapIdx, snapConf = list[0].Index, list[0].Configuration
	}
	first, err := n.logStore.FirstIndex()
	if err != nil {
		return raft.Configuration{}, err
	}
	last, err := n.logStore.LastIndex()
	if err != nil {
		return raft.Configuration{}, err
	}
	for i := last; i >= max(first, snapIdx+1) && i > 0; i-- {
		var l raft.Log
		if err := n.logStore.GetLog(i, &l); err != nil {
			return raft.Configuration{}, fmt.Errorf("log entry %d: %w", i, err)
		}
		if l.Type == raft.LogConfiguration {
			return raft.DecodeConfiguration(l.Data), nil
		}
	}
	return snapConf, nil
}

// electAtOnce is called right after raft started with fastElectionConfig:
// it lowers the heartbeat timeout back to the configured one, which makes
// the follower loop look for a leader now.
func (n *Node) electAtOnce() {
	c := n.raftConfig()
	err := n.raft.ReloadConfig(raft.ReloadableConfig{
		TrailingLogs: c.TrailingLogs, SnapshotInterval: c.SnapshotInterval, SnapshotThreshold: c.SnapshotThreshold,
		HeartbeatTimeout: c.HeartbeatTimeout, ElectionTimeout: c.ElectionTimeout,
	})
	if err != nil {
		n.log.Warn("could not trigger an immediate election; waiting out the heartbeat timeout", "error", err)
	}
}

// fastElectionConfig raises conf's heartbeat timeout by a millisecond, so
// that electAtOnce can lower it.
func fastElectionConfig(conf *raft.Config) {
	conf.HeartbeatTimeout += time.Millisecond
	conf.ElectionTimeout = max(conf.ElectionTimeout, conf.HeartbeatTimeout)
}
