package resp

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/tidwall/redcon"
)

// FuzzScanner checks the framing guard against arbitrary input. The guard
// decides which bytes of a connection redcon may parse, so it must never
// accept past a violation, and must accept everything when it finds none.
// Where a read ends must not matter: the input in one piece and in two
// gives the same bytes accepted, the same output and the same error. And
// redcon must parse what the guard hands it (the accepted bytes, inline
// lines made RESP commands) without an error: an error there would make
// redcon drop the good commands read with it, which the guard exists to
// prevent.
//
//	go test -run '^$' -fuzz FuzzScanner -fuzztime 1m -fuzzminimizetime 5s ./resp/
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
		"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
		"PING\r\nECHO 'a b' \"c\\\"d\"\n",
		"SET k \"unterminated\r\n",
		"*1\r\n$-1\r\n",
		"*0\r\n",
		"*9\r\n",
		"*1\r\n$100\r\n",
		"*2\r\n$1\r\nx\r\n#",
		"a\"b\n",
		"a\"b\" c\n",
		"\"a\"b\n",
		"SET a\tb \"\\x41\\x4g\" 'c\\'d' e\"f g\"\r\n",
		"\x00PING\n  \v\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		lim := limits{bulk: 64, array: 8, command: 512}
		whole := scanner{lim: lim}
		ok, err := whole.scan(in)
		if ok < 0 || ok > len(in) || (err == nil && ok != len(in)) {
			t.Fatalf("scan(%q) = %d, %v", in, ok, err)
		}
		out := string(whole.output(in, ok))

		k := int(split) % (len(in) + 1)
		parts := scanner{lim: lim}
		ok2, err2 := parts.scan(in[:k])
		out2 := string(parts.output(in[:k], ok2))
		if err2 == nil {
			var m int
			m, err2 = parts.scan(in[k:])
			out2 += string(parts.output(in[k:], m))
			ok2 = k + m
		}
		if ok2 != ok || fmt.Sprint(err2) != fmt.Sprint(err) || out2 != out {
			t.Fatalf("%q: whole %d, %v, %q; split at %d: %d, %v, %q", in, ok, err, out, k, ok2, err2, out2)
		}

		rd := redcon.NewReader(bytes.NewReader([]byte(out)))
		for {
			if _, rerr := rd.ReadCommands(); rerr != nil {
				if rerr != io.EOF {
					t.Fatalf("the guard handed redcon %q (of %q), which redcon refuses: %v", out, in[:ok], rerr)
				}
				break
			}
		}
	})
}
