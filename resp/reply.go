package resp

import (
	"strconv"

	"github.com/tidwall/redcon"
)

// reply is one answer, written once its turn in the pipeline comes.
type reply func(w redcon.Conn)

var (
	okReply   reply = func(w redcon.Conn) { w.WriteString("OK") }
	nullReply reply = func(w redcon.Conn) { w.WriteNull() }
)

func simple(s string) reply { return func(w redcon.Conn) { w.WriteString(s) } }

func integer(n int64) reply { return func(w redcon.Conn) { w.WriteInt64(n) } }

func bulk(b []byte) reply { return func(w redcon.Conn) { w.WriteBulk(b) } }

func bulkString(s string) reply { return func(w redcon.Conn) { w.WriteBulkString(s) } }

func errReply(err error) reply {
	text := errorText(err)
	return func(w redcon.Conn) { w.WriteError(text) }
}

func array(items []reply) reply {
	return func(w redcon.Conn) {
		w.WriteArray(len(items))
		for _, it := range items {
			it(w)
		}
	}
}

func bulkStrings(ss []string) reply {
	return func(w redcon.Conn) {
		w.WriteArray(len(ss))
		for _, s := range ss {
			w.WriteBulkString(s)
		}
	}
}

// parseInt parses a RESP integer argument as Redis does (string2ll): the
// one canonical decimal spelling of an int64, so "+5", "05", "-0" and
// " 5" are not integers.
func parseInt(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(b) {
		return 0, errNotInteger
	}
	return n, nil
}
