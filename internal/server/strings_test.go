package server_test

import (
	"testing"

	tu "shoal/internal/testutil"
)

func TestStrings(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			c.Do("HELLO", proto)
			c.Do("FLUSHALL")
			null := "(nil)"
			tu.Run(t, c, []tu.Case{
				{tu.C("GET nokey"), null},
				{tu.C("SET k v"), "OK"},
				{tu.C("GET k"), `"v"`},
				{tu.C("SET k v2 NX"), null},
				{tu.C("SET k v3 XX GET"), `"v"`},
				{tu.C("SET k2 v XX"), null},
				{tu.C("SET k v EX 0"), "(error) ERR invalid expire time in 'set' command"},
				{tu.C("SET k v EX x"), "(error) ERR value is not an integer or out of range"},
				{tu.C("SET k v NX XX"), "(error) ERR syntax error"},
				{tu.C("SET k v EX 10 PX 10"), "(error) ERR syntax error"},
				{tu.C("SET k v PX 100000"), "OK"},
				{tu.C("TTL k"), "(integer) 100"},
				{tu.C("SET k v KEEPTTL"), "OK"},
				{tu.C("TTL k"), "(integer) 100"},
				{tu.C("SET k v"), "OK"},
				{tu.C("TTL k"), "(integer) -1"},
				{tu.C("TTL nokey"), "(integer) -2"},
				{tu.C("SETNX k x"), "(integer) 0"},
				{tu.C("SETNX k3 x"), "(integer) 1"},
				{tu.C("SETEX k4 -1 x"), "(error) ERR invalid expire time in 'setex' command"},
				{tu.C("GETSET k3 y"), `"x"`},
				{tu.C("GETDEL k3"), `"y"`},
				{tu.C("EXISTS k3 k k"), "(integer) 2"},
				{tu.C("MSET a 1 b 2 c"), "(error) ERR wrong number of arguments for 'mset' command"},
				{tu.C("MSET a 1 b 2"), "OK"},
				{tu.C("MGET a b nokey"), `["1" "2" (nil)]`},
				{tu.C("MSETNX a 1 z 2"), "(integer) 0"},
				{tu.C("INCR a"), "(integer) 2"},
				{tu.C("INCRBY a -5"), "(integer) -3"},
				{tu.C("DECR a"), "(integer) -4"},
				{tu.C("DECRBY a 6"), "(integer) -10"},
				{tu.C("INCR k"), "(error) ERR value is not an integer or out of range"},
				{tu.C("SET big 9223372036854775807"), "OK"},
				{tu.C("INCR big"), "(error) ERR increment or decrement would overflow"},
				{tu.C("INCRBYFLOAT f 10.5"), `"10.5"`},
				{tu.C("INCRBYFLOAT f 0.1"), `"10.6"`},
				{tu.C("INCRBYFLOAT f abc"), "(error) ERR value is not a valid float"},
				{tu.C("APPEND s hello"), "(integer) 5"},
				{tu.C("APPEND s _world"), "(integer) 11"},
				{tu.C("STRLEN s"), "(integer) 11"},
				{tu.C("GETRANGE s 0 4"), `"hello"`},
				{tu.C("GETRANGE s -5 -1"), `"world"`},
				{tu.C("GETRANGE s 5 1"), `""`},
				{tu.C("SETRANGE s 6 W"), "(integer) 11"},
				{tu.C("GET s"), `"hello_World"`},
				{tu.C("SETRANGE pad 3 x"), "(integer) 4"},
				{tu.C("GET pad"), `"\x00\x00\x00x"`},
				{tu.C("SETBIT bits 7 1"), "(integer) 0"},
				{tu.C("GETBIT bits 7"), "(integer) 1"},
				{tu.C("BITCOUNT bits"), "(integer) 1"},
				{tu.C("SET foobar foobar"), "OK"},
				{tu.C("BITCOUNT foobar"), "(integer) 26"},
				{tu.C("BITCOUNT foobar 1 1"), "(integer) 6"},
				{tu.C("BITCOUNT foobar 5 30 BIT"), "(integer) 17"},
				{tu.C("BITPOS bits 1"), "(integer) 7"},
				{tu.C("SET ff \xff\xf0\x00"), "OK"},
				{tu.C("BITPOS ff 0"), "(integer) 12"},
				{tu.C("BITOP AND dest foobar s"), "(integer) 11"},
				{tu.C("GETEX s PERSIST"), `"hello_World"`},
				{tu.C("GETEX s EX 100"), `"hello_World"`},
				{tu.C("TTL s"), "(integer) 100"},
				{tu.C("SET lcs1 ohmytext"), "OK"},
				{tu.C("SET lcs2 mynewtext"), "OK"},
				{tu.C("LCS lcs1 lcs2"), `"mytext"`},
				{tu.C("LCS lcs1 lcs2 LEN"), "(integer) 6"},
				{tu.C("GET"), "(error) ERR wrong number of arguments for 'get' command"},
			})
		})
	}
}

func TestKeysAndExpiry(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	tu.Run(t, c, []tu.Case{
		{tu.C("SET a 1"), "OK"},
		{tu.C("TYPE a"), "string"},
		{tu.C("TYPE nokey"), "none"},
		{tu.C("EXPIRE a 100 NX"), "(integer) 1"},
		{tu.C("EXPIRE a 200 NX"), "(integer) 0"},
		{tu.C("EXPIRE a 50 GT"), "(integer) 0"},
		{tu.C("EXPIRE a 150 GT"), "(integer) 1"},
		{tu.C("EXPIRE a 50 LT"), "(integer) 1"},
		{tu.C("EXPIRE a 50 NX XX"), "(error) ERR NX and XX, GT or LT options at the same time are not compatible"},
		{tu.C("PERSIST a"), "(integer) 1"},
		{tu.C("PERSIST a"), "(integer) 0"},
		{tu.C("EXPIRE a -1"), "(integer) 1"},
		{tu.C("EXISTS a"), "(integer) 0"},
		{tu.C("SET a 1"), "OK"},
		{tu.C("PEXPIREAT a 4000000000000"), "(integer) 1"},
		{tu.C("EXPIRETIME a"), "(integer) 4000000000"},
		{tu.C("RENAME a b"), "OK"},
		{tu.C("EXPIRETIME b"), "(integer) 4000000000"},
		{tu.C("RENAME nokey b"), "(error) ERR no such key"},
		{tu.C("SET c 1"), "OK"},
		{tu.C("RENAMENX b c"), "(integer) 0"},
		{tu.C("COPY b d"), "(integer) 1"},
		{tu.C("COPY b d"), "(integer) 0"},
		{tu.C("COPY b d REPLACE"), "(integer) 1"},
		{tu.C("DBSIZE"), "(integer) 3"},
		{tu.C("DEL b c d nokey"), "(integer) 3"},
		{tu.C("SET n 12345"), "OK"},
		{tu.C("OBJECT ENCODING n"), `"int"`},
		{tu.C("SET n abc"), "OK"},
		{tu.C("OBJECT ENCODING n"), `"embstr"`},
		{tu.C("SCAN 0 COUNT 2000"), `["0" ["n"]]`},
		{tu.C("RANDOMKEY"), `"n"`},
		{tu.C("FLUSHALL"), "OK"},
		{tu.C("RANDOMKEY"), "(nil)"},
	})
	// KEYS order is unspecified: check it separately.
	c.Do("FLUSHALL")
	c.Do("MSET", "user:1", "a", "user:2", "b", "other", "c")
	r, _ := c.DoReply("KEYS", "user:*")
	if len(r.Elems) != 2 {
		t.Fatalf("KEYS user:* = %s", r)
	}
}
