package fsm

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Wire format of a log entry: a format version byte, a command type byte,
// then the command's fields in protobuf wire encoding (field numbers below).
// Decoding is strict: an unknown version, type or field number is an error,
// because silently skipping something a newer member meant would let
// replicas diverge.
const codecVersion byte = 1

// ErrDecode reports an entry this replica cannot decode: version skew or
// corruption.
var ErrDecode = errors.New("fsm: cannot decode command")

// Encode serialises a command for raft.Apply.
func Encode(c Command) []byte {
	return appendFields([]byte{codecVersion, c.cmdType()}, c)
}

// appendFields appends the fields of c (without version and type bytes).
func appendFields(b []byte, c Command) []byte {
	switch c := c.(type) {
	case Grant:
		b = putVarint(b, 1, c.ID)
		b = putVarint(b, 2, c.TTL)
		b = putString(b, 3, c.Name)
		b = putVarint(b, 4, c.SlackMs)
	case Revoke:
		b = putVarint(b, 1, c.ID)
	case KeepAlive:
		for _, id := range c.IDs {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(id))
		}
		b = putVarint(b, 2, c.SlackMs)
		b = putBool(b, 3, c.Strict)
	case Put:
		b = putString(b, 1, c.Key)
		b = putBytes(b, 2, c.Value)
		b = putVarint(b, 3, c.Lease)
		b = putBool(b, 4, c.HasCAS)
		b = putVarint(b, 5, c.CAS)
		b = putBool(b, 6, c.IfChanged)
		b = putBool(b, 7, c.Strict)
		b = putBool(b, 8, c.DropOldLease)
		b = putVarint(b, 9, int64(c.Only))
	case Delete:
		b = putString(b, 1, c.Key)
		b = putBool(b, 2, c.Prefix)
		b = putBool(b, 3, c.HasCAS)
		b = putVarint(b, 4, c.CAS)
		b = putBool(b, 5, c.DropOldLease)
	case Incr:
		b = putString(b, 1, c.Key)
		b = putVarint(b, 2, c.By)
		b = putBool(b, 3, c.Canonical)
	case Tick:
		b = putVarint(b, 1, c.ElapsedMs)
		b = putVarint(b, 2, c.Limit)
	case SetMember:
		b = putString(b, 1, c.Member.ID)
		b = putString(b, 2, c.Member.RaftAddr)
		b = putString(b, 3, c.Member.HTTPAddr)
		b = putVarint(b, 4, c.Member.Node)
	case DelMember:
		b = putString(b, 1, c.ID)
	case Check:
		b = putString(b, 1, c.Key)
		b = putVarint(b, 2, c.ModRevision)
	case Txn:
		// Each operation is one length-delimited field whose number is the
		// operation's own command type and whose payload is its fields, so
		// the order of the fields is the order of the operations. An
		// operation is written even when its payload is empty.
		for _, op := range c.Ops {
			b = protowire.AppendTag(b, protowire.Number(op.cmdType()), protowire.BytesType)
			b = protowire.AppendBytes(b, appendFields(nil, op))
		}
	case PutRole, DeleteRole, PutToken, DeleteToken:
		b = encodeAuth(b, c)
	}
	return b
}

// Decode parses an entry produced by Encode.
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: entry of %d bytes", ErrDecode, len(b))
	}
	if b[0] != codecVersion {
		return nil, fmt.Errorf("%w: format version %d (this build knows %d)", ErrDecode, b[0], codecVersion)
	}
	typ, body := b[1], b[2:]
	c, err := decodeFields(typ, body)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// decodeFields decodes the fields of a command of type typ.
func decodeFields(typ byte, body []byte) (Command, error) {
	var c Command
	var err error
	switch typ {
	case typeGrant:
		var g Grant
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.varint(&g.ID)
			case 2:
				return f.varint(&g.TTL)
			case 3:
				return f.str(&g.Name)
			case 4:
				return f.varint(&g.SlackMs)
			}
			return errUnknownField
		})
		c = g
	case typeRevoke:
		var r Revoke
		err = fields(body, func(n protowire.Number, f field) error {
			if n == 1 {
				return f.varint(&r.ID)
			}
			return errUnknownField
		})
		c = r
	case typeKeepAlive:
		var k KeepAlive
		err = fields(body, func(n protowire.Number, f field) error {
			if n == 1 {
				var id int64
				if err := f.varint(&id); err != nil {
					return err
				}
				k.IDs = append(k.IDs, id)
				return nil
			}
			if n == 2 {
				return f.varint(&k.SlackMs)
			}
			if n == 3 {
				return f.boolean(&k.Strict)
			}
			return errUnknownField
		})
		c = k
	case typePut:
		var p Put
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&p.Key)
			case 2:
				return f.bytes(&p.Value)
			case 3:
				return f.varint(&p.Lease)
			case 4:
				return f.boolean(&p.HasCAS)
			case 5:
				return f.varint(&p.CAS)
			case 6:
				return f.boolean(&p.IfChanged)
			case 7:
				return f.boolean(&p.Strict)
			case 8:
				return f.boolean(&p.DropOldLease)
			case 9:
				var v int64
				if err := f.varint(&v); err != nil {
					return err
				}
				if v != int64(PutIfAbsent) && v != int64(PutIfPresent) {
					return fmt.Errorf("bad put condition %d", v)
				}
				p.Only = PutIf(v)
				return nil
			}
			return errUnknownField
		})
		c = p
	case typeDelete:
		var d Delete
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&d.Key)
			case 2:
				return f.boolean(&d.Prefix)
			case 3:
				return f.boolean(&d.HasCAS)
			case 4:
				return f.varint(&d.CAS)
			case 5:
				return f.boolean(&d.DropOldLease)
			}
			return errUnknownField
		})
		c = d
	case typeIncr:
		var in Incr
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&in.Key)
			case 2:
				return f.varint(&in.By)
			case 3:
				return f.boolean(&in.Canonical)
			}
			return errUnknownField
		})
		c = in
	case typeTick:
		var t Tick
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.varint(&t.ElapsedMs)
			case 2:
				return f.varint(&t.Limit)
			}
			return errUnknownField
		})
		c = t
	case typeSetMember:
		var m SetMember
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&m.Member.ID)
			case 2:
				return f.str(&m.Member.RaftAddr)
			case 3:
				return f.str(&m.Member.HTTPAddr)
			case 4:
				return f.varint(&m.Member.Node)
			}
			return errUnknownField
		})
		c = m
	case typeDelMember:
		var d DelMember
		err = fields(body, func(n protowire.Number, f field) error {
			if n == 1 {
				return f.str(&d.ID)
			}
			return errUnknownField
		})
		c = d
	case typeTxn:
		var t Txn
		err = fields(body, func(n protowire.Number, f field) error {
			// Only the operations a Txn may hold; field numbers are
			// checked before narrowing to a type byte.
			switch n {
			case protowire.Number(typeGrant), protowire.Number(typePut), protowire.Number(typeDelete),
				protowire.Number(typeCheck), protowire.Number(typeIncr): // Incr: since EXEC's apply-time operations
			default:
				return errUnknownField
			}
			if f.typ != protowire.BytesType {
				return errors.New("wire type mismatch")
			}
			op, err := decodeFields(byte(n), f.buf)
			if err != nil {
				return err
			}
			t.Ops = append(t.Ops, op)
			return nil
		})
		c = t
	case typeCheck:
		// Alone it decodes (and applying refuses it), so that a log
		// holding one replays alike everywhere.
		var k Check
		err = fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&k.Key)
			case 2:
				return f.varint(&k.ModRevision)
			}
			return errUnknownField
		})
		c = k
	case typePutRole, typeDeleteRole, typePutToken, typeDeleteToken:
		c, err = decodeAuth(typ, body)
	default:
		return nil, fmt.Errorf("%w: unknown command type %d", ErrDecode, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrDecode, typ, err)
	}
	return c, nil
}

var errUnknownField = errors.New("unknown field")

// Zero values are omitted, as in proto3.
func putVarint(b []byte, n protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func putBool(b []byte, n protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return putVarint(b, n, 1)
}

func putString(b []byte, n protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func putBytes(b []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// field is one decoded wire field.
type field struct {
	typ protowire.Type
	v   uint64
	buf []byte
}

func (f field) varint(dst *int64) error {
	if f.typ != protowire.VarintType {
		return errors.New("wire type mismatch")
	}
	*dst = int64(f.v)
	return nil
}

func (f field) boolean(dst *bool) error {
	if f.typ != protowire.VarintType || f.v > 1 {
		return errors.New("bad bool")
	}
	*dst = f.v == 1
	return nil
}

func (f field) str(dst *string) error {
	if f.typ != protowire.BytesType {
		return errors.New("wire type mismatch")
	}
	*dst = string(f.buf)
	return nil
}

func (f field) bytes(dst *[]byte) error {
	if f.typ != protowire.BytesType {
		return errors.New("wire type mismatch")
	}
	*dst = append([]byte(nil), f.buf...)
	return nil
}

func fields(b []byte, fn func(protowire.Number, field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := field{typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.buf, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("field %d: unsupported wire type %d", num, typ)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, f); err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
	}
	return nil
}
