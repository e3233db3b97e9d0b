package server_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// zc is one step: a command (split on spaces), its RESP2 reply and, when
// it differs, its RESP3 reply.
type zc struct {
	cmd    string
	want   string
	want3  string
	since2 bool // Redis 7.2 behaviour (skipped against an older redis-server)
}

func zRun(t *testing.T, c *tu.Conn, proto string, cases []zc) {
	t.Helper()
	old := os.Getenv("SHOAL_COMPARE_REDIS") != ""
	for i, tc := range cases {
		if old && tc.since2 {
			continue
		}
		want := tc.want
		if proto == "3" && tc.want3 != "" {
			want = tc.want3
		}
		got := c.Do(tu.C(tc.cmd)...)
		if got != want {
			t.Errorf("resp%s step %d %s:\n got  %s\n want %s", proto, i, tc.cmd, got, want)
		}
	}
}

// zsetAddr is the server under test: Shoal, or a real redis-server when
// SHOAL_COMPARE_REDIS=host:port (to check the expectations themselves).
func zsetAddr(t *testing.T) string {
	if a := os.Getenv("SHOAL_COMPARE_REDIS"); a != "" {
		return a
	}
	return tu.StartServer(t).Addr
}

const (
	zWrongType = "(error) WRONGTYPE Operation against a key holding the wrong kind of value"
	zSyntaxErr = "(error) ERR syntax error"
	zNotInt    = "(error) ERR value is not an integer or out of range"
	zNotFloat  = "(error) ERR value is not a valid float"
	zMinMax    = "(error) ERR min or max is not a float"
	zLexErr    = "(error) ERR min or max not valid string range item"
)

var zsetCases = []zc{
	{cmd: "SET str x", want: "OK"},
	// ZADD and its flags
	{cmd: "ZADD z 1 a 2 b 3 c", want: "(integer) 3"},
	{cmd: "TYPE z", want: "zset"},
	{cmd: "OBJECT ENCODING z", want: `"listpack"`},
	{cmd: "ZADD z 1 a", want: "(integer) 0"},
	{cmd: "ZADD z CH 5 a 2 b 9 d", want: "(integer) 2"},
	{cmd: "ZADD z NX 7 a 4 e", want: "(integer) 1"},
	{cmd: "ZSCORE z a", want: `"5"`, want3: "(double) 5"},
	{cmd: "ZADD z XX 6 a 8 f", want: "(integer) 0"},
	{cmd: "ZSCORE z f", want: "(nil)"},
	{cmd: "ZADD z GT 1 a", want: "(integer) 0"},
	{cmd: "ZADD z GT CH 10 a", want: "(integer) 1"},
	{cmd: "ZADD z LT CH 20 a", want: "(integer) 0"},
	{cmd: "ZADD z LT 20 newlt", want: "(integer) 1"},
	{cmd: "ZADD z INCR 5 a", want: `"15"`, want3: "(double) 15"},
	{cmd: "ZADD z INCR XX 1 nope", want: "(nil)"},
	{cmd: "ZADD z INCR NX 1 a", want: "(nil)"},
	{cmd: "ZADD z INCR GT -1 a", want: "(nil)"},
	{cmd: "ZADD z INCR LT -1.5 a", want: `"13.5"`, want3: "(double) 13.5"},
	{cmd: "ZRANGE z 0 -1 WITHSCORES", want: `["b" "2" "c" "3" "e" "4" "d" "9" "a" "13.5" "newlt" "20"]`,
		want3: `[["b" (double) 2] ["c" (double) 3] ["e" (double) 4] ["d" (double) 9] ["a" (double) 13.5] ["newlt" (double) 20]]`},
	{cmd: "ZADD z2 XX 1 a", want: "(integer) 0"},
	{cmd: "ZADD z2 XX INCR 1 a", want: "(nil)"},
	{cmd: "EXISTS z2", want: "(integer) 0"},
	{cmd: "ZADD z NX XX 1 a", want: "(error) ERR XX and NX options at the same time are not compatible"},
	{cmd: "ZADD z GT LT 1 a", want: "(error) ERR GT, LT, and/or NX options at the same time are not compatible"},
	{cmd: "ZADD z GT NX 1 a", want: "(error) ERR GT, LT, and/or NX options at the same time are not compatible"},
	{cmd: "ZADD z LT NX 1 a", want: "(error) ERR GT, LT, and/or NX options at the same time are not compatible"},
	{cmd: "ZADD z INCR 1 a 2 b", want: "(error) ERR INCR option supports a single increment-element pair"},
	{cmd: "ZADD z 1 a 2", want: zSyntaxErr},
	{cmd: "ZADD z NX XX 1", want: zSyntaxErr},
	{cmd: "ZADD z x a", want: zNotFloat},
	{cmd: "ZADD z nan a", want: zNotFloat},
	{cmd: "ZADD z 1 a x b", want: zNotFloat},
	{cmd: "ZADD z 1", want: "(error) ERR wrong number of arguments for 'zadd' command"},
	{cmd: "ZADD str 1 a", want: zWrongType},
	{cmd: "ZADD inf +inf a", want: "(integer) 1"},
	{cmd: "ZINCRBY inf -inf a", want: "(error) ERR resulting score is not a number (NaN)"},
	{cmd: "ZADD inf INCR -inf a", want: "(error) ERR resulting score is not a number (NaN)"},
	{cmd: "ZSCORE inf a", want: `"inf"`, want3: "(double) inf"},
	{cmd: "ZINCRBY zi x a", want: zNotFloat},
	{cmd: "ZINCRBY zi 2.5 m", want: `"2.5"`, want3: "(double) 2.5"},
	{cmd: "ZINCRBY zi -1 m", want: `"1.5"`, want3: "(double) 1.5"},
	{cmd: "ZINCRBY str 1 a", want: zWrongType},
	// ZREM, ZCARD, ZSCORE, ZMSCORE
	{cmd: "ZREM z newlt nope", want: "(integer) 1"},
	{cmd: "ZREM nokey a", want: "(integer) 0"},
	{cmd: "ZREM str a", want: zWrongType},
	{cmd: "ZADD one 1 x", want: "(integer) 1"},
	{cmd: "ZREM one x", want: "(integer) 1"},
	{cmd: "EXISTS one", want: "(integer) 0"},
	{cmd: "ZCARD z", want: "(integer) 5"},
	{cmd: "ZCARD nokey", want: "(integer) 0"},
	{cmd: "ZCARD str", want: zWrongType},
	{cmd: "ZSCORE z nope", want: "(nil)"},
	{cmd: "ZSCORE nokey a", want: "(nil)"},
	{cmd: "ZSCORE str a", want: zWrongType},
	{cmd: "ZMSCORE z b nope e", want: `["2" (nil) "4"]`, want3: "[(double) 2 (nil) (double) 4]"},
	{cmd: "ZMSCORE nokey a", want: "[(nil)]"},
	{cmd: "ZMSCORE str a", want: zWrongType},
	{cmd: "DEL z inf zi", want: "(integer) 3"},

	// ranges by rank and score
	{cmd: "ZADD z 1 a 2 b 3 c 4 d 5 e", want: "(integer) 5"},
	{cmd: "ZRANGE z 0 -1", want: `["a" "b" "c" "d" "e"]`},
	{cmd: "ZRANGE z 1 2 WITHSCORES", want: `["b" "2" "c" "3"]`, want3: `[["b" (double) 2] ["c" (double) 3]]`},
	{cmd: "ZRANGE z -2 -1", want: `["d" "e"]`},
	{cmd: "ZRANGE z 3 1", want: "[]"},
	{cmd: "ZRANGE z 10 20", want: "[]"},
	{cmd: "ZRANGE z -100 0", want: `["a"]`},
	{cmd: "ZRANGE z 0 1 REV", want: `["e" "d"]`},
	{cmd: "ZREVRANGE z 0 1 WITHSCORES", want: `["e" "5" "d" "4"]`, want3: `[["e" (double) 5] ["d" (double) 4]]`},
	{cmd: "ZREVRANGE z -1 100", want: `["a"]`},
	{cmd: "ZRANGE z 2 4 BYSCORE", want: `["b" "c" "d"]`},
	{cmd: "ZRANGE z (2 4 BYSCORE", want: `["c" "d"]`},
	{cmd: "ZRANGE z 4 2 BYSCORE REV", want: `["d" "c" "b"]`},
	{cmd: "ZRANGE z -inf +inf BYSCORE LIMIT 1 2", want: `["b" "c"]`},
	{cmd: "ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2", want: `["d" "c"]`},
	{cmd: "ZRANGE z -inf +inf BYSCORE LIMIT -1 2", want: "[]"},
	{cmd: "ZRANGE z -inf +inf BYSCORE LIMIT 3 -1", want: `["d" "e"]`},
	{cmd: "ZRANGE z -inf +inf BYSCORE LIMIT 1 0", want: "[]"},
	{cmd: "ZRANGE z -inf +inf BYSCORE LIMIT 9 1", want: "[]"},
	{cmd: "ZRANGEBYSCORE z (1 (5", want: `["b" "c" "d"]`},
	{cmd: "ZRANGEBYSCORE z 2 3 WITHSCORES", want: `["b" "2" "c" "3"]`, want3: `[["b" (double) 2] ["c" (double) 3]]`},
	{cmd: "ZRANGEBYSCORE z 0 10 LIMIT 4 10", want: `["e"]`},
	{cmd: "ZRANGEBYSCORE z 3 3", want: `["c"]`},
	{cmd: "ZRANGEBYSCORE z (3 3", want: "[]"},
	{cmd: "ZRANGEBYSCORE z 4 2", want: "[]"},
	{cmd: "ZRANGEBYSCORE z 1e400 +inf", want: "[]"},
	{cmd: "ZREVRANGEBYSCORE z 3 1", want: `["c" "b" "a"]`},
	{cmd: "ZREVRANGEBYSCORE z (3 -inf LIMIT 0 1 WITHSCORES", want: `["b" "2"]`, want3: `[["b" (double) 2]]`},
	{cmd: "ZRANGEBYSCORE z 1 2 REV", want: zSyntaxErr},
	{cmd: "ZRANGEBYSCORE z 1 2 BYSCORE", want: zSyntaxErr},
	{cmd: "ZRANGEBYSCORE z x 2", want: zMinMax},
	{cmd: "ZRANGEBYSCORE z 1 nan", want: zMinMax},
	{cmd: "ZRANGEBYSCORE z 1 2 LIMIT x 1", want: zNotInt},
	{cmd: "ZRANGE z 0 1 LIMIT 0 1", want: "(error) ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"},
	{cmd: "ZREVRANGE z 0 1 LIMIT 0 1", want: "(error) ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"},
	{cmd: "ZRANGE z 0 1 LIMIT 0", want: zSyntaxErr},
	{cmd: "ZRANGE z a b", want: zNotInt},
	{cmd: "ZRANGE z 0 1 BYSCORE BYLEX", want: zSyntaxErr},
	{cmd: "ZRANGE z 0 1 REV REV", want: zSyntaxErr},
	{cmd: "ZRANGE z 0 1 FOO", want: zSyntaxErr},
	{cmd: "ZRANGE nokey 0 -1", want: "[]"},
	{cmd: "ZRANGE str 0 -1", want: zWrongType},
	{cmd: "ZRANGE z", want: "(error) ERR wrong number of arguments for 'zrange' command"},
	{cmd: "ZCOUNT z 2 4", want: "(integer) 3"},
	{cmd: "ZCOUNT z (2 (4", want: "(integer) 1"},
	{cmd: "ZCOUNT z -inf +inf", want: "(integer) 5"},
	{cmd: "ZCOUNT z ( 1", want: "(integer) 1"},
	{cmd: "ZCOUNT z 0x1p1 3", want: "(integer) 2"},
	{cmd: "ZCOUNT z x 1", want: zMinMax},
	{cmd: "ZCOUNT nokey 0 1", want: "(integer) 0"},
	{cmd: "ZCOUNT str 0 1", want: zWrongType},
	{cmd: "ZRANK z c", want: "(integer) 2"},
	{cmd: "ZREVRANK z c", want: "(integer) 2"},
	{cmd: "ZRANK z a", want: "(integer) 0"},
	{cmd: "ZREVRANK z a", want: "(integer) 4"},
	{cmd: "ZRANK z nope", want: "(nil)"},
	{cmd: "ZRANK nokey a", want: "(nil)"},
	{cmd: "ZRANK str a", want: zWrongType},
	{cmd: "ZRANK z c WITHSCORE", want: `[(integer) 2 "3"]`, want3: "[(integer) 2 (double) 3]", since2: true},
	{cmd: "ZREVRANK z e withscore", want: `[(integer) 0 "5"]`, want3: "[(integer) 0 (double) 5]", since2: true},
	{cmd: "ZRANK z nope WITHSCORE", want: "(nil)", since2: true},
	{cmd: "ZRANK z c foo", want: zSyntaxErr, since2: true},
	{cmd: "ZRANK z c WITHSCORE x", want: "(error) ERR wrong number of arguments for 'zrank' command"},

	// lex ranges
	{cmd: "ZADD l 0 a 0 b 0 c 0 d 0 e", want: "(integer) 5"},
	{cmd: "ZRANGEBYLEX l - +", want: `["a" "b" "c" "d" "e"]`},
	{cmd: "ZRANGEBYLEX l [b (d", want: `["b" "c"]`},
	{cmd: "ZRANGEBYLEX l (b [b", want: "[]"},
	{cmd: "ZRANGEBYLEX l - + LIMIT 1 2", want: `["b" "c"]`},
	{cmd: "ZREVRANGEBYLEX l + - LIMIT 0 2", want: `["e" "d"]`},
	{cmd: "ZREVRANGEBYLEX l (d [a", want: `["c" "b" "a"]`},
	{cmd: "ZRANGE l [c + BYLEX", want: `["c" "d" "e"]`},
	{cmd: "ZRANGE l + [c BYLEX REV", want: `["e" "d" "c"]`},
	{cmd: "ZRANGEBYLEX l - + WITHSCORES", want: "(error) ERR syntax error, WITHSCORES not supported in combination with BYLEX"},
	{cmd: "ZRANGEBYLEX l a +", want: zLexErr},
	{cmd: "ZRANGEBYLEX l +a +", want: zLexErr},
	{cmd: "ZLEXCOUNT l [b [d", want: "(integer) 3"},
	{cmd: "ZLEXCOUNT l - +", want: "(integer) 5"},
	{cmd: "ZLEXCOUNT l + -", want: "(integer) 0"},
	{cmd: "ZLEXCOUNT l x y", want: zLexErr},
	{cmd: "ZLEXCOUNT nokey - +", want: "(integer) 0"},
	{cmd: "ZLEXCOUNT str - +", want: zWrongType},
	{cmd: "ZREMRANGEBYLEX l [b (d", want: "(integer) 2"},
	{cmd: "ZRANGE l 0 -1", want: `["a" "d" "e"]`},
	{cmd: "ZREMRANGEBYLEX l x +", want: zLexErr},

	// ZREMRANGEBY*
	{cmd: "ZADD r 1 a 2 b 3 c 4 d 5 e 6 f", want: "(integer) 6"},
	{cmd: "ZREMRANGEBYSCORE r (1 2", want: "(integer) 1"},
	{cmd: "ZREMRANGEBYSCORE r x 1", want: zMinMax},
	{cmd: "ZREMRANGEBYRANK r 0 1", want: "(integer) 2"},
	{cmd: "ZREMRANGEBYRANK r -1 -1", want: "(integer) 1"},
	{cmd: "ZREMRANGEBYRANK r 5 10", want: "(integer) 0"},
	{cmd: "ZREMRANGEBYRANK r a 1", want: zNotInt},
	{cmd: "ZRANGE r 0 -1 WITHSCORES", want: `["d" "4" "e" "5"]`, want3: `[["d" (double) 4] ["e" (double) 5]]`},
	{cmd: "ZREMRANGEBYSCORE r -inf +inf", want: "(integer) 2"},
	{cmd: "EXISTS r", want: "(integer) 0"},
	{cmd: "ZREMRANGEBYRANK nokey 0 -1", want: "(integer) 0"},
	{cmd: "ZREMRANGEBYRANK str 0 1", want: zWrongType},

	// pops
	{cmd: "ZADD p 1 a 2 b 3 c 4 d 5 e", want: "(integer) 5"},
	{cmd: "ZPOPMIN p", want: `["a" "1"]`, want3: `["a" (double) 1]`},
	{cmd: "ZPOPMAX p", want: `["e" "5"]`, want3: `["e" (double) 5]`},
	{cmd: "ZPOPMIN p 2", want: `["b" "2" "c" "3"]`, want3: `[["b" (double) 2] ["c" (double) 3]]`},
	{cmd: "ZPOPMAX p 1", want: `["d" "4"]`, want3: `[["d" (double) 4]]`},
	{cmd: "EXISTS p", want: "(integer) 0"},
	{cmd: "ZPOPMIN p", want: "[]"},
	{cmd: "ZPOPMIN nokey 1", want: "[]"},
	{cmd: "ZPOPMIN p -1", want: "(error) ERR value is out of range, must be positive"},
	{cmd: "ZPOPMAX p x", want: "(error) ERR value is out of range, must be positive"},
	{cmd: "ZPOPMIN p 1 2", want: zSyntaxErr},
	{cmd: "ZPOPMIN str", want: zWrongType},
	{cmd: "ZPOPMIN str 0", want: zWrongType},
	{cmd: "ZADD p 1 a", want: "(integer) 1"},
	{cmd: "ZPOPMIN p 0", want: "[]"},
	{cmd: "ZCARD p", want: "(integer) 1"},
	{cmd: "ZADD m1 1 a 2 b 3 c", want: "(integer) 3"},
	{cmd: "ZMPOP 2 nokey m1 MIN", want: `["m1" [["a" "1"]]]`, want3: `["m1" [["a" (double) 1]]]`},
	{cmd: "ZMPOP 1 m1 MAX COUNT 5", want: `["m1" [["c" "3"] ["b" "2"]]]`, want3: `["m1" [["c" (double) 3] ["b" (double) 2]]]`},
	{cmd: "ZMPOP 1 m1 MIN", want: "(nil)"},
	{cmd: "ZMPOP 0 m1 MIN", want: "(error) ERR numkeys should be greater than 0"},
	{cmd: "ZMPOP x m1 MIN", want: "(error) ERR numkeys should be greater than 0"},
	{cmd: "ZMPOP 2 m1 MIN", want: zSyntaxErr},
	{cmd: "ZMPOP 1 m1 FOO", want: zSyntaxErr},
	{cmd: "ZMPOP 1 m1 MIN COUNT 0", want: "(error) ERR count should be greater than 0"},
	{cmd: "ZMPOP 1 m1 MIN COUNT x", want: "(error) ERR count should be greater than 0"},
	{cmd: "ZMPOP 1 m1 MIN COUNT 1 COUNT 1", want: zSyntaxErr},
	{cmd: "ZMPOP 1 m1 MIN COUNT", want: zSyntaxErr},
	{cmd: "ZMPOP 1 str MIN", want: zWrongType},
	{cmd: "ZADD m2 1 a", want: "(integer) 1"},
	{cmd: "BZMPOP 0 1 m2 MIN", want: `["m2" [["a" "1"]]]`, want3: `["m2" [["a" (double) 1]]]`},
	{cmd: "BZMPOP abc 1 m2 MIN", want: "(error) ERR timeout is not a float or out of range"},
	{cmd: "BZMPOP -1 1 m2 MIN", want: "(error) ERR timeout is negative"},
	{cmd: "BZMPOP -1 0 m2 MIN", want: "(error) ERR numkeys should be greater than 0"},
	{cmd: "BZMPOP 0 1 m2 FOO", want: zSyntaxErr},
	{cmd: "ZADD b1 1 a 2 b", want: "(integer) 2"},
	{cmd: "BZPOPMIN nokey b1 0", want: `["b1" "a" "1"]`, want3: `["b1" "a" (double) 1]`},
	{cmd: "BZPOPMAX b1 0", want: `["b1" "b" "2"]`, want3: `["b1" "b" (double) 2]`},
	{cmd: "BZPOPMIN b1 x", want: "(error) ERR timeout is not a float or out of range"},
	{cmd: "BZPOPMIN b1 -1", want: "(error) ERR timeout is negative"},
	{cmd: "BZPOPMIN str 0", want: zWrongType},

	// set algebra
	{cmd: "ZADD s1 1 a 2 b 3 c", want: "(integer) 3"},
	{cmd: "ZADD s2 10 b 20 c 30 d", want: "(integer) 3"},
	{cmd: "ZUNION 2 s1 s2", want: `["a" "b" "c" "d"]`},
	{cmd: "ZUNION 2 s1 s2 WITHSCORES", want: `["a" "1" "b" "12" "c" "23" "d" "30"]`,
		want3: `[["a" (double) 1] ["b" (double) 12] ["c" (double) 23] ["d" (double) 30]]`},
	{cmd: "ZUNION 2 s1 s2 WEIGHTS 2 1 AGGREGATE MAX WITHSCORES", want: `["a" "2" "b" "10" "c" "20" "d" "30"]`,
		want3: `[["a" (double) 2] ["b" (double) 10] ["c" (double) 20] ["d" (double) 30]]`},
	{cmd: "ZUNION 3 s1 s2 nokey AGGREGATE MIN", want: `["a" "b" "c" "d"]`},
	{cmd: "ZINTER 2 s1 s2 AGGREGATE MIN WITHSCORES", want: `["b" "2" "c" "3"]`, want3: `[["b" (double) 2] ["c" (double) 3]]`},
	{cmd: "ZINTER 2 s1 s2 WEIGHTS 1 -1", want: `["c" "b"]`},
	{cmd: "ZINTER 2 s1 nokey", want: "[]"},
	{cmd: "ZDIFF 2 s1 s2 WITHSCORES", want: `["a" "1"]`, want3: `[["a" (double) 1]]`},
	{cmd: "ZDIFF 2 s2 s1", want: `["d"]`},
	{cmd: "ZDIFF 2 nokey s1", want: "[]"},
	{cmd: "ZUNIONSTORE dst 2 s1 s2 WEIGHTS 1 0", want: "(integer) 4"},
	{cmd: "ZRANGE dst 0 -1 WITHSCORES", want: `["d" "0" "a" "1" "b" "2" "c" "3"]`,
		want3: `[["d" (double) 0] ["a" (double) 1] ["b" (double) 2] ["c" (double) 3]]`},
	{cmd: "ZINTERSTORE dst 2 s1 nokey", want: "(integer) 0"},
	{cmd: "EXISTS dst", want: "(integer) 0"},
	{cmd: "ZINTERSTORE dst 2 s1 s2", want: "(integer) 2"},
	{cmd: "ZRANGE dst 0 -1 WITHSCORES", want: `["b" "12" "c" "23"]`, want3: `[["b" (double) 12] ["c" (double) 23]]`},
	{cmd: "ZDIFFSTORE dst 2 s1 s2", want: "(integer) 1"},
	{cmd: "ZRANGE dst 0 -1", want: `["a"]`},
	{cmd: "ZUNIONSTORE str 1 s1", want: "(integer) 3"},
	{cmd: "TYPE str", want: "zset"},
	{cmd: "SET str x", want: "OK"},
	{cmd: "ZINTERCARD 2 s1 s2", want: "(integer) 2"},
	{cmd: "ZINTERCARD 2 s1 s2 LIMIT 1", want: "(integer) 1"},
	{cmd: "ZINTERCARD 2 s1 s2 LIMIT 0", want: "(integer) 2"},
	{cmd: "ZINTERCARD 2 s1 nokey", want: "(integer) 0"},
	{cmd: "ZINTERCARD 0 s1", want: "(error) ERR at least 1 input key is needed for 'zintercard' command"},
	{cmd: "ZINTERCARD 3 s1", want: zSyntaxErr},
	{cmd: "ZINTERCARD 1 s1 LIMIT -1", want: "(error) ERR LIMIT can't be negative"},
	{cmd: "ZINTERCARD 1 s1 FOO", want: zSyntaxErr},
	{cmd: "ZINTERCARD 1 str", want: zWrongType},
	{cmd: "ZUNIONSTORE dst 0 s1", want: "(error) ERR at least 1 input key is needed for 'zunionstore' command"},
	{cmd: "ZUNION x s1", want: zNotInt},
	{cmd: "ZUNIONSTORE dst 2 s1", want: zSyntaxErr},
	{cmd: "ZUNION 1 s1 WEIGHTS x", want: "(error) ERR weight value is not a float"},
	{cmd: "ZUNION 2 s1 s2 WEIGHTS 1", want: zSyntaxErr},
	{cmd: "ZUNION 1 s1 AGGREGATE foo", want: zSyntaxErr},
	{cmd: "ZDIFF 1 s1 WEIGHTS 1", want: zSyntaxErr},
	{cmd: "ZDIFF 1 s1 AGGREGATE SUM", want: zSyntaxErr},
	{cmd: "ZUNIONSTORE dst 1 s1 WITHSCORES", want: zSyntaxErr},
	{cmd: "ZUNION 2 s1 str", want: zWrongType},
	{cmd: "ZUNION 2 s1 str WEIGHTS x y", want: zWrongType},
	{cmd: "ZADD si inf a", want: "(integer) 1"},
	{cmd: "ZADD sn -inf a", want: "(integer) 1"},
	{cmd: "ZUNION 1 si WEIGHTS 0 WITHSCORES", want: `["a" "0"]`, want3: `[["a" (double) 0]]`},
	{cmd: "ZUNION 2 si sn WITHSCORES", want: `["a" "0"]`, want3: `[["a" (double) 0]]`},
	{cmd: "ZRANGESTORE rs s2 0 1", want: "(integer) 2"},
	{cmd: "ZRANGE rs 0 -1", want: `["b" "c"]`},
	{cmd: "ZRANGESTORE rs s2 25 +inf BYSCORE", want: "(integer) 1"},
	{cmd: "ZRANGE rs 0 -1 WITHSCORES", want: `["d" "30"]`, want3: `[["d" (double) 30]]`},
	{cmd: "ZRANGESTORE rs s2 +inf 15 BYSCORE REV LIMIT 0 1", want: "(integer) 1"},
	{cmd: "ZRANGE rs 0 -1", want: `["d"]`},
	{cmd: "ZRANGESTORE rs nokey 0 -1", want: "(integer) 0"},
	{cmd: "EXISTS rs", want: "(integer) 0"},
	{cmd: "ZRANGESTORE rs s2 0 1 WITHSCORES", want: zSyntaxErr},
	{cmd: "ZRANGESTORE rs str 0 1", want: zWrongType},
	{cmd: "ZRANGESTORE rs s2 0 x BYSCORE", want: zMinMax},

	// ZSCAN, ZRANDMEMBER
	{cmd: "ZADD sc 1 a 2 b 3 c", want: "(integer) 3"},
	{cmd: "ZSCAN sc 0", want: `["0" ["a" "1" "b" "2" "c" "3"]]`},
	{cmd: "ZSCAN sc 0 MATCH b*", want: `["0" ["b" "2"]]`},
	{cmd: "ZSCAN sc 0 COUNT 1", want: `["0" ["a" "1" "b" "2" "c" "3"]]`},
	{cmd: "ZSCAN sc x", want: "(error) ERR invalid cursor"},
	{cmd: "ZSCAN sc 0 COUNT 0", want: zSyntaxErr},
	{cmd: "ZSCAN sc 0 FOO", want: zSyntaxErr},
	{cmd: "ZSCAN nokey 0 COUNT 0", want: `["0" []]`},
	{cmd: "ZSCAN str 0", want: zWrongType},
	{cmd: "ZADD one 5 x", want: "(integer) 1"},
	{cmd: "ZRANDMEMBER one", want: `"x"`},
	{cmd: "ZRANDMEMBER nokey", want: "(nil)"},
	{cmd: "ZRANDMEMBER one 2", want: `["x"]`},
	{cmd: "ZRANDMEMBER one -2 WITHSCORES", want: `["x" "5" "x" "5"]`, want3: `[["x" (double) 5] ["x" (double) 5]]`},
	{cmd: "ZRANDMEMBER one 1 withscores", want: `["x" "5"]`, want3: `[["x" (double) 5]]`},
	{cmd: "ZRANDMEMBER one 0", want: "[]"},
	{cmd: "ZRANDMEMBER nokey 3", want: "[]"},
	{cmd: "ZRANDMEMBER one 1 2", want: zSyntaxErr},
	{cmd: "ZRANDMEMBER one x", want: zNotInt},
	{cmd: "ZRANDMEMBER one 1 WITHSCORES x", want: zSyntaxErr},
	{cmd: "ZRANDMEMBER one -9223372036854775807 WITHSCORES", want: "(error) ERR value is out of range"},
	{cmd: "ZRANDMEMBER str", want: zWrongType},
	{cmd: "ZRANDMEMBER str 1", want: zWrongType},
}

func TestZSetCommands(t *testing.T) {
	addr := zsetAddr(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c := tu.Dial(t, addr)
			c.Do("HELLO", proto)
			c.Do("FLUSHALL")
			zRun(t, c, proto, zsetCases)
		})
	}
}

// TestZSetRandomAndScan checks the replies whose content is random or
// spread over calls.
func TestZSetRandomAndScan(t *testing.T) {
	c := tu.Dial(t, zsetAddr(t))
	c.Do("FLUSHALL")
	args := []string{"ZADD", "big"}
	var all []string
	for i := 0; i < 1000; i++ {
		m := "m" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + string(rune('A'+i/260))
		all = append(all, m)
		args = append(args, "1", m)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	c.Do(args...)
	if got := c.Do("OBJECT", "ENCODING", "big"); got != `"skiplist"` {
		t.Errorf("OBJECT ENCODING big = %s", got)
	}
	seen := map[string]bool{}
	cur := "0"
	for calls := 0; ; calls++ {
		r, err := c.DoReply("ZSCAN", "big", cur, "COUNT", "50")
		if err != nil || len(r.Elems) != 2 {
			t.Fatalf("ZSCAN: %v %s", err, r)
		}
		for i := 0; i < len(r.Elems[1].Elems); i += 2 {
			seen[r.Elems[1].Elems[i].Str] = true
		}
		cur = r.Elems[0].Str
		if cur == "0" {
			break
		}
		if calls > 1000 {
			t.Fatal("ZSCAN does not terminate")
		}
	}
	if len(seen) != len(all) {
		t.Errorf("ZSCAN saw %d of %d members", len(seen), len(all))
	}
	for _, n := range []string{"5", "400", "900"} {
		r, _ := c.DoReply("ZRANDMEMBER", "big", n)
		got := map[string]bool{}
		for _, e := range r.Elems {
			if !slices.Contains(all, e.Str) || got[e.Str] {
				t.Fatalf("ZRANDMEMBER big %s: bad or repeated member %q", n, e.Str)
			}
			got[e.Str] = true
		}
		if k, _ := strconv.Atoi(n); len(got) != min(len(all), k) {
			t.Fatalf("ZRANDMEMBER big %s returned %d members", n, len(got))
		}
	}
	r, _ := c.DoReply("ZRANDMEMBER", "big", "-3000")
	if len(r.Elems) != 3000 {
		t.Fatalf("ZRANDMEMBER big -3000 returned %d", len(r.Elems))
	}
}

// zWaitBlocked waits until n clients are blocked on key.
func zWaitBlocked(t *testing.T, node *tu.Node, key string, n int) {
	t.Helper()
	db := node.Srv.DB()
	id := cluster.Slot([]byte(key))
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.Lock(id)
		got := len(db.Slot(id).Waiters[key])
		db.Unlock(id)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients blocked on %s, want %d", got, key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func zRead(t *testing.T, c *tu.Conn) string {
	t.Helper()
	r, err := c.Read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return r.String()
}

func TestZSetBlocking(t *testing.T) {
	node := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c1 := tu.Dial(t, node.Addr)
			c2 := tu.Dial(t, node.Addr)
			c3 := tu.Dial(t, node.Addr)
			for _, c := range []*tu.Conn{c1, c2, c3} {
				c.Do("HELLO", proto)
			}
			c2.Do("FLUSHALL")
			d := func(two, three string) string {
				if proto == "3" {
					return three
				}
				return two
			}
			check := func(got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("got %s want %s", got, want)
				}
			}
			send := func(c *tu.Conn, args ...string) {
				c.Send(resp.AppendCommand(nil, args...))
			}

			// BZPOPMIN wakes on ZADD and pops the element.
			send(c1, "BZPOPMIN", "nokey", "bk", "0")
			zWaitBlocked(t, node, "bk", 1)
			check(c2.Do("ZADD", "bk", "1", "a"), "(integer) 1")
			check(zRead(t, c1), d(`["bk" "a" "1"]`, `["bk" "a" (double) 1]`))
			check(c2.Do("EXISTS", "bk"), "(integer) 0")

			// Two waiters are served oldest first by one ZADD.
			send(c1, "BZPOPMIN", "q", "0")
			zWaitBlocked(t, node, "q", 1)
			send(c3, "BZPOPMAX", "q", "0")
			zWaitBlocked(t, node, "q", 2)
			check(c2.Do("ZADD", "q", "1", "a", "2", "b", "3", "c"), "(integer) 3")
			check(zRead(t, c1), d(`["q" "a" "1"]`, `["q" "a" (double) 1]`))
			check(zRead(t, c3), d(`["q" "c" "3"]`, `["q" "c" (double) 3]`))
			check(c2.Do("ZRANGE", "q", "0", "-1"), `["b"]`)

			// BZMPOP with COUNT, woken by ZUNIONSTORE (any write serves).
			c2.Do("ZADD", "src", "1", "x", "2", "y", "3", "z")
			send(c1, "BZMPOP", "0", "2", "nokey", "bm", "MAX", "COUNT", "2")
			zWaitBlocked(t, node, "bm", 1)
			check(c2.Do("ZUNIONSTORE", "bm", "1", "src"), "(integer) 3")
			check(zRead(t, c1), d(`["bm" [["z" "3"] ["y" "2"]]]`, `["bm" [["z" (double) 3] ["y" (double) 2]]]`))
			check(c2.Do("ZCARD", "bm"), "(integer) 1")

			// A value of another type does not serve; the zset does.
			send(c1, "BZPOPMAX", "w", "0")
			zWaitBlocked(t, node, "w", 1)
			check(c2.Do("SET", "w", "str"), "OK")
			check(c2.Do("DEL", "w"), "(integer) 1")
			check(c2.Do("ZADD", "w", "7", "m"), "(integer) 1")
			check(zRead(t, c1), d(`["w" "m" "7"]`, `["w" "m" (double) 7]`))

			// Timeouts reply with a null array.
			check(c1.Do("BZPOPMIN", "nokey", "0.01"), "(nil)")
			check(c1.Do("BZMPOP", "0.01", "1", "nokey", "MIN"), "(nil)")

			// Inside MULTI the commands never block.
			c1.Do("MULTI")
			c1.Do("BZPOPMIN", "nokey", "0")
			c1.Do("BZMPOP", "0", "1", "nokey", "MIN")
			check(c1.Do("EXEC"), "[(nil) (nil)]")
		})
	}
}

// TestZSetMemoryAccounting checks that every mutation path keeps the
// accounted memory exact: after the keys are gone, usage is back to start.
func TestZSetMemoryAccounting(t *testing.T) {
	node := tu.StartServer(t)
	c := tu.Dial(t, node.Addr)
	db := node.Srv.DB()
	before := db.UsedMemory()
	args := []string{"ZADD", "acc"}
	for i := 0; i < 300; i++ {
		args = append(args, strconv.Itoa(i), "member-"+strconv.Itoa(i))
	}
	for _, cmd := range [][]string{
		args,
		{"ZINCRBY", "acc", "1000", "member-1"},
		{"ZADD", "acc", "GT", "CH", "5000", "member-2", "1", "member-3"},
		{"ZREM", "acc", "member-4", "member-5"},
		{"ZREMRANGEBYRANK", "acc", "0", "9"},
		{"ZREMRANGEBYSCORE", "acc", "(20", "30"},
		{"ZREMRANGEBYLEX", "acc", "[member-5", "(member-6"},
		{"ZPOPMIN", "acc", "3"},
		{"ZPOPMAX", "acc"},
		{"BZPOPMIN", "acc", "0"},
		{"ZMPOP", "1", "acc", "MAX", "COUNT", "2"},
		{"ZUNIONSTORE", "acc2", "1", "acc"},
		{"ZRANGESTORE", "acc3", "acc", "0", "5"},
		{"ZUNIONSTORE", "acc3", "2", "acc", "acc2"},
		{"ZDIFFSTORE", "acc2", "2", "acc", "acc3"},
		{"ZREMRANGEBYRANK", "acc", "0", "-1"},
		{"DEL", "acc2", "acc3"},
	} {
		if r := c.Do(cmd...); strings.HasPrefix(r, "(error)") {
			t.Fatalf("%v: %s", cmd, r)
		}
	}
	if got := c.Do("DBSIZE"); got != "(integer) 0" {
		t.Fatalf("DBSIZE = %s", got)
	}
	if after := db.UsedMemory(); after != before {
		t.Fatalf("used memory %d after all keys are gone, %d before", after, before)
	}
}

func TestZSetOpsAcceptSets(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	c.Do("SADD", "{z}s", "a", "b")
	c.Do("ZADD", "{z}z", "2", "b", "3", "c")
	for _, tc := range [][2][]string{
		{{"ZUNIONSTORE", "{z}out", "2", "{z}s", "{z}z"}, {"(integer) 3"}},
		{{"ZRANGE", "{z}out", "0", "-1", "WITHSCORES"}, {`["a" "1" "b" "3" "c" "3"]`}},
		{{"ZINTER", "2", "{z}s", "{z}z", "WEIGHTS", "10", "1"}, {`["b"]`}},
		{{"ZDIFF", "2", "{z}s", "{z}z"}, {`["a"]`}},
	} {
		if got := c.Do(tc[0]...); got != tc[1][0] {
			t.Errorf("%q = %s, want %s", tc[0], got, tc[1][0])
		}
	}
}
