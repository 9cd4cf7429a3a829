package registry

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// FuzzPeerWire feeds arbitrary bytes to every decoder of the forwarding
// channel: what a peer (or anything that reaches the raft port) sends is
// parsed by these before anything else looks at it. None may panic, none
// may read past its input, and what one accepts must encode back to
// something it accepts again with the same meaning.
//
//	go test -run '^$' -fuzz FuzzPeerWire -fuzztime 1m -fuzzminimizetime 2s ./registry/
//
// (With the default minimizing time, fuzzing pauses for up to a minute
// each time it shrinks a new large input.)
func FuzzPeerWire(f *testing.F) {
	put := fsm.Encode(fsm.Put{Key: "/a", Value: []byte("v")})
	f.Add(appendRequest(nil, kindPropose, 7, time.Second, put))
	f.Add(appendRequest(nil, kindBatch, 1<<40, 0, encodeBatch([][]byte{put, fsm.Encode(fsm.Delete{Key: "/b"})})))
	f.Add(appendRequest(nil, kindAddMember, 3, time.Minute, encodeJoin(JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", Voter: true})))
	f.Add(appendRequest(nil, kindAddMember, 4, time.Minute, encodeJoin(JoinRequest{ID: "n3", RaftAddr: "127.0.0.1:1", ClusterID: "00112233445566778899aabbccddeeff"})))
	f.Add(appendRequest(nil, kindProposeAs, 8, time.Second, encodeCaller(42, "0123456789abcdef", put)))
	f.Add(encodeKeepAliveAs(42, []kaEntry{{caller: "tok", ids: []int64{1, 2}}, {ids: []int64{3}}}))
	f.Add(appendRequest(nil, kindOpen, 12, time.Second, append([]byte{kindPropose}, put...)))
	f.Add(appendRequest(nil, kindKeepAliveAs, 10, time.Second, encodeKeepAliveAs(7, []kaEntry{{caller: "a", ids: []int64{5}}})))
	f.Add(appendResponse(nil, statusOK, 9, encodeBatchResults([]BatchResult{{Result: fsm.Result{Revision: 4}}, {Err: ErrNoLeader}})))
	f.Add(appendResponse(nil, statusErr, 2, encodeError(nil, fsm.ErrCASFailed)))
	f.Add(appendResponse(nil, statusOK, 13, append(binary.AppendUvarint(nil, 300), bytes.Repeat([]byte{7}, clusterIDLen)...)))
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		// A stream of frames, as the peer server reads it.
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			frame, err := readFrame(r, limit)
			if err != nil {
				break
			}
			if len(frame) > limit {
				t.Fatalf("readFrame returned %d bytes over the limit of %d", len(frame), limit)
			}
			checkRequest(t, frame)
			checkResponse(t, frame)
		}
		// Each payload decoder on the raw bytes too.
		checkRequest(t, data)
		checkResponse(t, data)
		if applied, id, err := decodeClusterIDAnswer(data); err == nil {
			a, again, err := decodeClusterIDAnswer(append(binary.AppendUvarint(nil, applied), id...))
			if err != nil || a != applied || !bytes.Equal(again, id) {
				t.Fatalf("cluster id answer %d %x re-encoded decodes as %d %x, %v", applied, id, a, again, err)
			}
		}
		if jr, err := decodeJoin(data); err == nil {
			again, err := decodeJoin(encodeJoin(jr))
			if err != nil || again != jr {
				t.Fatalf("join %+v re-encoded decodes as %+v, %v", jr, again, err)
			}
		}
		if cmds, err := decodeBatch(data); err == nil {
			encs := make([][]byte, len(cmds))
			for i, c := range cmds {
				encs[i] = fsm.Encode(c)
			}
			again, err := decodeBatch(encodeBatch(encs))
			if err != nil || len(again) != len(cmds) {
				t.Fatalf("batch of %d re-encoded decodes as %d commands, %v", len(cmds), len(again), err)
			}
		}
		if res, err := decodeBatchResults(data, -1); err == nil {
			if _, err := decodeBatchResults(encodeBatchResults(res), len(res)); err != nil {
				t.Fatalf("%d results re-encoded do not decode: %v", len(res), err)
			}
		}
		if applied, id, rest, err := decodeCaller(data); err == nil {
			a2, id2, rest2, err := decodeCaller(encodeCaller(applied, id, rest))
			if err != nil || a2 != applied || id2 != id || !bytes.Equal(rest2, rest) {
				t.Fatalf("caller (%d, %q, %x) re-encoded decodes as (%d, %q, %x), %v", applied, id, rest, a2, id2, rest2, err)
			}
		}
		if applied, entries, err := decodeKeepAliveAs(data); err == nil {
			a2, e2, err := decodeKeepAliveAs(encodeKeepAliveAs(applied, entries))
			if err != nil || a2 != applied || !reflect.DeepEqual(e2, entries) {
				t.Fatalf("keep-alive group (%d, %+v) re-encoded decodes as (%d, %+v), %v", applied, entries, a2, e2, err)
			}
		}
		if err := decodeError(data); err == nil {
			t.Fatalf("decodeError(%x) is nil: an error answer must stay an error", data)
		}
	})
}

func checkRequest(t *testing.T, b []byte) {
	t.Helper()
	req, err := parseRequest(b)
	if err != nil {
		return
	}
	if req.timeout < 0 || req.timeout > 24*time.Hour {
		t.Fatalf("request timeout %v accepted", req.timeout)
	}
	frame := appendRequest(nil, req.kind, req.id, req.timeout, req.payload)
	again, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), len(frame))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRequest(again)
	if err != nil || got.kind != req.kind || got.id != req.id || got.timeout != req.timeout || !bytes.Equal(got.payload, req.payload) {
		t.Fatalf("request %+v re-encoded parses as %+v, %v", req, got, err)
	}
}

func checkResponse(t *testing.T, b []byte) {
	t.Helper()
	status, id, payload, err := parseResponse(b)
	if err != nil {
		return
	}
	got, gotID, gotPayload, err := parseResponse(appendResponse(nil, status, id, payload)[4:])
	if err != nil || got != status || gotID != id || !bytes.Equal(gotPayload, payload) {
		t.Fatalf("response (%d, %d, %x) re-encoded parses as (%d, %d, %x), %v", status, id, payload, got, gotID, gotPayload, err)
	}
	if status == statusErr {
		var pe *peerError
		if e := decodeError(payload); e == nil || (errors.As(e, &pe) && pe.msg == "") {
			t.Fatalf("error answer %x decodes as %v", payload, e)
		}
	}
}
