"""The sorted-set type: ZADD ZINCRBY ZREM ZCARD ZCOUNT ZLEXCOUNT ZSCORE ZMSCORE
ZRANK ZREVRANK ZRANGE ZRANGESTORE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE
ZRANGEBYLEX ZREVRANGEBYLEX ZREMRANGEBY{RANK,SCORE,LEX} ZPOPMIN ZPOPMAX ZMPOP
ZRANDMEMBER ZUNION(STORE) ZINTER(STORE) ZINTERCARD ZDIFF(STORE) ZSCAN, and
zsets in the generic commands.

Most of this is differential: the same requests go to kvserver and to the
real redis-server 7.0.15 and the raw replies must be identical, in RESP2 and
RESP3 (scores included, byte for byte). ZRANDMEMBER is random, so it is
checked by properties. The rest checks what Redis cannot show: the WAL
(kill -9, restart, every effect replayed to bit-identical scores), the
checkpoint codec, COPY's independence, the structure's invariants and a
running checkpoint's copy-on-write pre-image.
"""

from __future__ import annotations

import random
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from kvserver.types import BY_KIND, BY_TYPE, codec_of
from kvserver.types.zset import ZSET, ZSet
from test_differential import (same_reply_tests, I64_MAX, I64_MIN, Kind, Pair, RawClient,  # noqa: F401
                               ScanAll, Unordered, kv_port, pair, redis_port, run_step)

BIG = 200  # members: past zset-max-listpack-entries (128), so a skiplist in Redis
BIG_ZADD = ("ZADD", "big", *[x for i in range(BIG) for x in (str(i % 37), "m%03d" % i)])
LEX_ZADD = "ZADD lex 0 a 0 b 0 c 0 d 0 e 0 f 0 g 0 aa 0 ab 0 ''"
U = Unordered

CASES: dict[str, list] = {
    "zadd-basics": [
        "ZADD z 1 a", "ZADD z 2 b 3 c", "ZADD z 1 a", "ZADD z 5 a", "ZRANGE z 0 -1 WITHSCORES",
        "ZCARD z", "ZCARD nokey", "ZADD z CH 5 a 6 b 7 d", "ZADD z ch 5 a", "ZSCORE z a",
        "ZADD z 1 x 2 x", "ZSCORE z x", "ZADD z", "ZADD z 1", "ZADD z 1 a 2", "ZADD z NX",
        "ZADD z NX 1", "ZADD z foo a", "ZADD z nan a", "ZADD z 1 a nan b", "ZADD z '' a",
        "ZADD z ' 1' a", "ZADD z '1 ' a", "ZADD z 1e400 a", "ZADD z 1e-400 a", "ZADD z 0x10 hex",
        "ZSCORE z hex", "ZADD z inf i -inf ni +inf pi", "ZADD z Infinity ii -INF nii",
        "ZRANGE z 0 -1 WITHSCORES", "ZADD z 0.1 f 1.5e300 g -0 mz 1e-310 den 123456789012345678 bigint",
        "ZRANGE z 0 -1 WITHSCORES", "ZSCORE z f", "ZSCORE z mz", "ZSCORE z den", "ZSCORE z bigint",
        "ZADD z 3.0000000000000004 p 100 q 1e17 r 12345.678e-3 t", "ZMSCORE z p q r t nope",
        ("ZADD", "z", "1", "bin\x00ary"), ("ZSCORE", "z", "bin\x00ary"), ("ZADD", "z", "1\x002", "n"),
        "TYPE z", "ZADD", "ZADD z 1 a 2 b 3"],
    "zadd-options": [
        "ZADD z 1 a 2 b", "ZADD z NX 5 a 3 c", "ZRANGE z 0 -1 WITHSCORES", "ZADD z XX 5 a 4 d",
        "ZRANGE z 0 -1 WITHSCORES", "ZADD z XX NX 1 a", "ZADD z NX GT 1 a", "ZADD z LT NX 1 a",
        "ZADD z GT LT 1 a", "ZADD z INCR 1 a 2 b", "ZADD z GT 4 a 3 b", "ZRANGE z 0 -1 WITHSCORES",
        "ZADD z GT CH 6 a 1 b 9 e", "ZADD z LT CH 6 a 1 b 0 f", "ZRANGE z 0 -1 WITHSCORES",
        "ZADD z XX GT CH 10 a 0 b 8 nope", "ZADD z XX LT CH 10 a 0 b 8 nope",
        "ZADD z INCR 2.5 a", "ZADD z INCR -2.5 newm", "ZADD z NX INCR 1 a", "ZADD z XX INCR 1 nope",
        "ZADD z GT INCR -1 a", "ZADD z LT INCR 1 a", "ZADD z GT INCR 1 a", "ZADD z LT INCR -1 a",
        "ZADD nokey XX 1 a", "ZADD nokey XX INCR 1 a", "EXISTS nokey", "ZADD z incr ch xx 1 a",
        "ZADD z nx nx 1 zz", "ZADD z 1 a FOO 2 b", "ZADD z FOO 1 a",
        "ZADD z INCR inf a", "ZADD z INCR -inf a", "ZSCORE z a", "ZADD z inf i", "ZADD z INCR -inf i",
        "ZINCRBY z -inf i", "ZSCORE z i", "ZADD z INCR 1 a 2", "ZADD z INCR",
        "ZADD z GT 1 new", "ZADD z LT 1 new2", "ZRANGE z 0 -1 WITHSCORES"],
    "zincrby": [
        "ZINCRBY z 1 a", "ZINCRBY z 1.5 a", "ZINCRBY z -0.1 a", "ZINCRBY z 0.1 b", "ZINCRBY z 0.2 b",
        "ZINCRBY z x a", "ZINCRBY z 1 ", "ZINCRBY z", "ZINCRBY z 1 a b", "ZINCRBY z inf a",
        "ZINCRBY z -inf a", "ZINCRBY z 1 a", "ZINCRBY z 1e308 big", "ZINCRBY z 1e308 big",
        "ZRANGE z 0 -1 WITHSCORES", "SET str v", "ZINCRBY str 1 a", "ZINCRBY str x a"],
    "zrem-zcard": [
        "ZADD z 1 a 2 b 3 c", "ZREM z a", "ZREM z a", "ZREM z b nope c", "EXISTS z", "ZREM nokey a",
        "ZREM z", "ZADD z 1 a", "ZREM z a a a", "EXISTS z", "ZCARD z x", "ZCARD"],
    "zscore-zmscore": [
        "ZADD z 1.5 a -2 b", "ZSCORE z a", "ZSCORE z b", "ZSCORE z c", "ZSCORE nokey a",
        "ZSCORE z", "ZSCORE z a b", "ZMSCORE z a c b", "ZMSCORE nokey a b", "ZMSCORE z",
        "SET str v", "ZMSCORE str a", "ZSCORE str a"],
    "zrank": [
        "ZADD z 1 a 2 b 3 c 3 d", "ZRANK z a", "ZRANK z d", "ZREVRANK z a", "ZREVRANK z d",
        "ZRANK z nope", "ZRANK nokey a", "ZREVRANK nokey a", "ZRANK z", "ZRANK z a WITHSCORE",
        "ZREVRANK z a b"],
    "zcount": [
        "ZADD z -inf ni 1 a 2 b 3 c 4 d inf pi", "ZCOUNT z 1 3", "ZCOUNT z (1 3", "ZCOUNT z (1 (3",
        "ZCOUNT z -inf +inf", "ZCOUNT z (-inf (inf", "ZCOUNT z 3 1", "ZCOUNT z 2 2", "ZCOUNT z (2 2",
        "ZCOUNT z 2 (2", "ZCOUNT z inf inf", "ZCOUNT z (inf inf", "ZCOUNT z -inf (-inf",
        "ZCOUNT z x 1", "ZCOUNT z 1 x", "ZCOUNT z nan 1", "ZCOUNT z (nan 1", "ZCOUNT z ( 3",
        "ZCOUNT z '' 3", "ZCOUNT z ' 1' 3", "ZCOUNT z '1 ' 3", "ZCOUNT z 0x2 3", "ZCOUNT z 1e400 inf",
        "ZCOUNT z -1e400 1", "ZCOUNT nokey 1 2", "ZCOUNT nokey x 2", "ZCOUNT z 1", "ZCOUNT z ((1 2",
        ("ZCOUNT", "z", "1\x00x", "3"), "ZCOUNT z 1.5 +inf", "ZCOUNT z .5 4.", "ZCOUNT z -0 (2"],
    "zlexcount": [
        LEX_ZADD, "ZLEXCOUNT lex - +", "ZLEXCOUNT lex [a [c", "ZLEXCOUNT lex (a [c",
        "ZLEXCOUNT lex (a (c", "ZLEXCOUNT lex [c [a", "ZLEXCOUNT lex + -", "ZLEXCOUNT lex - -",
        "ZLEXCOUNT lex + +", "ZLEXCOUNT lex [a [a", "ZLEXCOUNT lex (a [a", "ZLEXCOUNT lex [ [b",
        "ZLEXCOUNT lex ( [b", "ZLEXCOUNT lex a c", "ZLEXCOUNT lex [a c", "ZLEXCOUNT lex -a +",
        "ZLEXCOUNT lex - +b", "ZLEXCOUNT lex '' +", "ZLEXCOUNT nokey - +", "ZLEXCOUNT nokey a b",
        "ZLEXCOUNT lex [aa (b", "ZLEXCOUNT lex 1 2", ("ZLEXCOUNT", "lex", "-\x00", "+")],
    "zrange-rank": [
        "ZADD z 1 a 2 b 3 c 4 d 5 e", "ZRANGE z 0 -1", "ZRANGE z 1 2", "ZRANGE z -2 -1",
        "ZRANGE z -100 100", "ZRANGE z 3 1", "ZRANGE z 5 10", "ZRANGE z -1 -2", "ZRANGE z 0 0 WITHSCORES",
        "ZRANGE z 0 -1 withscores", "ZRANGE z 0 -1 REV", "ZRANGE z 0 1 REV WITHSCORES",
        "ZRANGE z x 1", "ZRANGE z 0 x", "ZRANGE z 0 1 LIMIT 0 1", "ZRANGE z 0 1 FOO",
        "ZRANGE z 0 1 REV REV", "ZRANGE z 0 1 BYSCORE BYLEX", "ZRANGE z 0 1 LIMIT 0",
        "ZRANGE nokey 0 -1", "ZRANGE nokey x y", "ZREVRANGE z 0 -1", "ZREVRANGE z 0 1 WITHSCORES",
        "ZREVRANGE z 0 1 REV", "ZREVRANGE z 0 1 BYSCORE", "ZREVRANGE z 1 0", "ZRANGE z 0",
        f"ZRANGE z 0 {I64_MAX}", f"ZRANGE z {I64_MIN} -1", "ZRANGE z 0 99999999999999999999",
        "ZRANGE z 0 -1 LIMIT 1 2 WITHSCORES", "ZREVRANGE z 0 -1 LIMIT 0 1"],
    "zrange-byscore": [
        "ZADD z -inf ni 1 a 2 b 2 bb 3 c 4 d inf pi", "ZRANGEBYSCORE z -inf +inf",
        "ZRANGEBYSCORE z 2 3 WITHSCORES", "ZRANGEBYSCORE z (2 3", "ZRANGEBYSCORE z 2 (3",
        "ZRANGEBYSCORE z -inf +inf LIMIT 1 2", "ZRANGEBYSCORE z -inf +inf LIMIT 1 -1",
        "ZRANGEBYSCORE z -inf +inf LIMIT -1 2", "ZRANGEBYSCORE z -inf +inf LIMIT 0 0",
        "ZRANGEBYSCORE z -inf +inf LIMIT 7 1", "ZRANGEBYSCORE z -inf +inf LIMIT 6 5",
        "ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 2 3", "ZRANGEBYSCORE z 3 2",
        "ZRANGEBYSCORE z x 2", "ZRANGEBYSCORE z 1 2 LIMIT", "ZRANGEBYSCORE z 1 2 LIMIT 1",
        "ZRANGEBYSCORE z 1 2 LIMIT x 1", "ZRANGEBYSCORE z 1 2 LIMIT 1 x", "ZRANGEBYSCORE z 1 2 REV",
        "ZRANGEBYSCORE z 1 2 BYSCORE", "ZRANGEBYSCORE nokey 1 2", "ZRANGEBYSCORE nokey x 2",
        "ZREVRANGEBYSCORE z +inf -inf", "ZREVRANGEBYSCORE z 3 2 WITHSCORES", "ZREVRANGEBYSCORE z 2 3",
        "ZREVRANGEBYSCORE z (3 (1", "ZREVRANGEBYSCORE z +inf -inf LIMIT 1 2",
        "ZREVRANGEBYSCORE z +inf -inf LIMIT 2 -1", "ZREVRANGEBYSCORE z +inf -inf LIMIT -2 1",
        "ZRANGE z 1 3 BYSCORE", "ZRANGE z 1 3 BYSCORE WITHSCORES LIMIT 1 10", "ZRANGE z 3 1 BYSCORE REV",
        "ZRANGE z (3 1 byscore rev limit 0 1", "ZRANGE z 1 3 BYSCORE LIMIT 0 1 LIMIT 1 1",
        "ZRANGE z +inf -inf BYSCORE REV WITHSCORES", "ZRANGE z (2 (2 BYSCORE", "ZRANGE z 2 2 BYSCORE"],
    "zrange-bylex": [
        LEX_ZADD, "ZRANGEBYLEX lex - +", "ZRANGEBYLEX lex [a [b", "ZRANGEBYLEX lex (a [b",
        "ZRANGEBYLEX lex - + LIMIT 2 3", "ZRANGEBYLEX lex - + LIMIT -1 3", "ZRANGEBYLEX lex - + LIMIT 3 -1",
        "ZRANGEBYLEX lex + -", "ZRANGEBYLEX lex a b", "ZRANGEBYLEX lex - + WITHSCORES",
        "ZREVRANGEBYLEX lex + -", "ZREVRANGEBYLEX lex [c (a", "ZREVRANGEBYLEX lex - +",
        "ZREVRANGEBYLEX lex + - LIMIT 1 2", "ZRANGE lex [b [f BYLEX", "ZRANGE lex [f [b BYLEX REV",
        "ZRANGE lex - + BYLEX LIMIT 1 1", "ZRANGE lex - + BYLEX WITHSCORES", "ZRANGE lex a b BYLEX",
        "ZRANGEBYLEX nokey - +", "ZRANGEBYLEX nokey a b", "ZRANGE lex [ (b BYLEX",
        "ZRANGEBYLEX lex [aa +", "ZRANGEBYLEX lex (aa +", "ZRANGEBYLEX lex - (a"],
    "zrangestore": [
        "ZADD src 1 a 2 b 3 c 4 d", "ZRANGESTORE dst src 0 1", "ZRANGE dst 0 -1 WITHSCORES",
        "ZRANGESTORE dst src 2 3 REV", "ZRANGE dst 0 -1 WITHSCORES", "ZRANGESTORE dst src (1 +inf BYSCORE LIMIT 1 1",
        "ZRANGE dst 0 -1 WITHSCORES", "ZRANGESTORE dst src +inf -inf BYSCORE REV LIMIT 0 2",
        "ZRANGE dst 0 -1 WITHSCORES", "ZRANGESTORE dst src [b + BYLEX", "ZRANGE dst 0 -1",
        "ZRANGESTORE dst src 5 10", "EXISTS dst", "ZRANGESTORE dst src 0 -1", "ZRANGESTORE dst nokey 0 -1",
        "EXISTS dst", "ZRANGESTORE dst src 0 -1 WITHSCORES", "ZRANGESTORE dst src 0 -1 LIMIT 0 1",
        "SET str v", "EXPIRE str 100", "ZRANGESTORE str src 0 0", "TYPE str", "TTL str",
        "ZRANGESTORE dst str 0 1", "ZRANGESTORE dst src", "ZRANGESTORE src src 1 2", "ZRANGE src 0 -1"],
    "zremrange": [
        "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f", "ZREMRANGEBYRANK z 0 0", "ZREMRANGEBYRANK z -1 -1",
        "ZREMRANGEBYRANK z 5 10", "ZREMRANGEBYRANK z 2 1", "ZRANGE z 0 -1", "ZREMRANGEBYRANK z x 1",
        "ZREMRANGEBYSCORE z (2 4", "ZRANGE z 0 -1", "ZREMRANGEBYSCORE z x 1", "ZREMRANGEBYSCORE z 10 20",
        "ZREMRANGEBYRANK z 0 -1", "EXISTS z", "ZREMRANGEBYRANK nokey 0 -1", "ZREMRANGEBYRANK nokey x 1",
        LEX_ZADD, "ZREMRANGEBYLEX lex [b (d", "ZRANGE lex 0 -1", "ZREMRANGEBYLEX lex a b",
        "ZREMRANGEBYLEX lex - (a", "ZREMRANGEBYLEX lex - +", "EXISTS lex", "ZREMRANGEBYLEX nokey - +",
        "ZREMRANGEBYSCORE nokey 1 2", "ZREMRANGEBYSCORE nokey x 2", "ZREMRANGEBYRANK z 0",
        "ZADD z 1 a", "ZREMRANGEBYSCORE z -inf +inf", "EXISTS z"],
    "zpop": [
        "ZADD z 1 a 2 b 3 c 4 d 5 e", "ZPOPMIN z", "ZPOPMAX z", "ZPOPMIN z 2", "ZPOPMAX z 0",
        "ZPOPMIN z -1", "ZPOPMIN z x", "ZPOPMIN z 1 2", "ZPOPMIN nokey", "ZPOPMIN nokey 2",
        "ZPOPMIN nokey -1", "ZPOPMAX z 10", "EXISTS z", "ZPOPMIN", "ZADD z 1 a", "ZPOPMIN z 1",
        "ZADD z 1 a 1 b", "ZPOPMAX z 1", "ZPOPMAX z", "SET str v", "ZPOPMIN str", "ZPOPMIN str -1"],
    "zmpop": [
        "ZADD z1 1 a 2 b 3 c", "ZADD z2 5 x", "ZMPOP 1 z1 MIN", "ZMPOP 1 z1 MAX COUNT 5",
        "EXISTS z1", "ZMPOP 2 z1 z2 min count 1", "ZMPOP 2 z1 z2 MIN", "ZMPOP 0 z1 MIN",
        "ZMPOP -1 z1 MIN", "ZMPOP x z1 MIN", "ZMPOP 1 z1", "ZMPOP 3 z1 z2 MIN", "ZMPOP 1 z1 FOO",
        "ZMPOP 1 z1 MIN COUNT", "ZMPOP 1 z1 MIN COUNT 0", "ZMPOP 1 z1 MIN COUNT -1",
        "ZMPOP 1 z1 MIN COUNT x", "ZMPOP 1 z1 MIN COUNT 1 COUNT 1", "ZMPOP 1 z1 MIN BAR",
        "ZADD z3 1 a", "SET str v", "ZMPOP 2 str z3 MIN", "ZMPOP 2 z3 str MIN", "ZMPOP 2 nokey z3 MAX",
        "ZMPOP 1 nokey MIN", "ZMPOP", "ZMPOP 1", f"ZMPOP {I64_MAX} z MIN", "ZMPOP 99999999999999999999 z MIN"],
    "zrandmember-args": [
        "ZADD z 1 a", "ZRANDMEMBER nokey", "ZRANDMEMBER nokey 1", "ZRANDMEMBER nokey -1 WITHSCORES",
        "ZRANDMEMBER z", "ZRANDMEMBER z 1", "ZRANDMEMBER z 1 WITHSCORES", "ZRANDMEMBER z -3 WITHSCORES",
        "ZRANDMEMBER z 5", "ZRANDMEMBER z 0", "ZRANDMEMBER z 0 WITHSCORES", "ZRANDMEMBER z x",
        "ZRANDMEMBER z 1 FOO", "ZRANDMEMBER z 1 WITHSCORES x", f"ZRANDMEMBER z {I64_MIN}",
        "ZRANDMEMBER z 5000000000000000000 WITHSCORES", "ZRANDMEMBER z -5000000000000000000 WITHSCORES",
        "ZRANDMEMBER nokey x", "ZRANDMEMBER nokey 1 FOO", "ZRANDMEMBER", "ZADD two 1 a 2 b",
        "ZRANDMEMBER two 2 WITHSCORES", "ZRANDMEMBER two 5"],
    "zunion-zinter-zdiff": [
        "ZADD a 1 x 2 y 3 z", "ZADD b 10 y 20 z 30 w", "SADD s x w q", "ZUNION 2 a b",
        "ZUNION 2 a b WITHSCORES", "ZUNION 3 a b s WITHSCORES", "ZUNION 2 a b WEIGHTS 2 0.5 WITHSCORES",
        "ZUNION 2 a b AGGREGATE MIN WITHSCORES", "ZUNION 2 a b AGGREGATE max WITHSCORES",
        "ZUNION 2 a b WEIGHTS 1 WITHSCORES", "ZUNION 2 a b WEIGHTS 1 x", "ZUNION 2 a b AGGREGATE foo",
        "ZUNION 2 a b AGGREGATE", "ZUNION 2 a nokey WITHSCORES", "ZUNION 1 nokey", "ZUNION 0 a",
        "ZUNION -1 a", "ZUNION x a", "ZUNION 3 a b", "ZUNION 2 a b FOO", "ZINTER 2 a b WITHSCORES",
        "ZINTER 3 a b s WITHSCORES", "ZINTER 2 a s WITHSCORES", "ZINTER 2 a nokey", "ZINTER 2 a b AGGREGATE MAX WEIGHTS 1 2 WITHSCORES",
        "ZINTER 2 a a WITHSCORES", "ZINTERCARD 2 a b", "ZINTERCARD 2 a b LIMIT 1", "ZINTERCARD 2 a b LIMIT 0",
        "ZINTERCARD 2 a b LIMIT -1", "ZINTERCARD 2 a b LIMIT x", "ZINTERCARD 2 a b WITHSCORES",
        "ZINTERCARD 2 a b WEIGHTS 1 2", "ZINTERCARD 0 a", "ZINTERCARD 3 a b", "ZDIFF 2 a b",
        "ZDIFF 2 a b WITHSCORES", "ZDIFF 2 a s WITHSCORES", "ZDIFF 1 a WITHSCORES", "ZDIFF 2 a a",
        "ZDIFF 2 nokey a", "ZDIFF 2 a nokey WITHSCORES", "ZDIFF 2 a b WEIGHTS 1 2", "ZDIFF 2 a b AGGREGATE SUM",
        "ZDIFF 0 a", "SET str v", "ZUNION 2 a str", "ZINTER 2 nokey str", "ZDIFF 2 a str",
        "ZINTERCARD 2 str a", "ZUNION 2 a b WEIGHTS inf -inf WITHSCORES", "ZADD c inf x -inf y",
        "ZUNION 2 c c WITHSCORES", "ZINTER 2 c c WEIGHTS 1 -1 WITHSCORES", "ZUNION 1 c WEIGHTS 0 WITHSCORES",
        "ZINTER 2 c a WEIGHTS 0 1 WITHSCORES", "ZINTER 2 c a WEIGHTS 1 0 AGGREGATE MIN WITHSCORES",
        "ZUNION 2 a b WEIGHTS nan 1", "ZUNION", "ZUNION 1"],
    "stores": [
        "ZADD a 1 x 2 y 3 z", "ZADD b 10 y 20 z 30 w", "SADD s x w q", "ZUNIONSTORE d 2 a b",
        "ZRANGE d 0 -1 WITHSCORES", "ZINTERSTORE d 3 a b s WEIGHTS 1 2 3", "ZRANGE d 0 -1 WITHSCORES",
        "ZDIFFSTORE d 2 a b", "ZRANGE d 0 -1 WITHSCORES", "ZINTERSTORE d 2 a nokey", "EXISTS d",
        "ZINTERSTORE d 2 a nokey", "ZUNIONSTORE d 1 s", "ZRANGE d 0 -1 WITHSCORES", "SET str v",
        "EXPIRE str 100", "ZUNIONSTORE str 1 a", "TTL str", "TYPE str", "ZUNIONSTORE d 2 a str",
        "ZUNIONSTORE d 2 a b WITHSCORES", "ZDIFFSTORE d 2 a b WITHSCORES", "ZINTERSTORE d 0 a",
        "ZUNIONSTORE d 0 a", "ZDIFFSTORE d 0 a", "ZUNIONSTORE d 3 a b", "ZINTERSTORE a 2 a b",
        "ZRANGE a 0 -1 WITHSCORES", "ZUNIONSTORE", "ZUNIONSTORE d", "ZUNIONSTORE d 1",
        "ZDIFFSTORE d 1 nokey", "ZUNIONSTORE d 2 b b AGGREGATE MIN", "ZRANGE d 0 -1 WITHSCORES"],
    "zscan-small": [
        "ZADD z 1 a 2 b 3 c 1.5 ab", "ZSCAN z 0", "ZSCAN z 0 COUNT 1", "ZSCAN z 0 MATCH a*",
        "ZSCAN z 0 MATCH zz*", "ZSCAN nokey 0", "ZSCAN nokey 0 FOO", "ZSCAN nokey x", "ZSCAN z x",
        "ZSCAN z 0 COUNT 0", "ZSCAN z 0 COUNT x", "ZSCAN z 0 FOO bar", "ZSCAN z 0 TYPE zset",
        "ZSCAN z", "ZSCAN z 0 COUNT", "ZADD f 0.1 x inf y -0 z 1e100 w", "ZSCAN f 0",
        "ZADD g 12345678901234567890 x 3 y -5 z", "ZSCAN g 0",
        "ZADD h 1e17 a 1e18 b 4.6e18 c -1e17 d 1.5e17 e 5e18 f 123456789012345678 g 1e16 h -0 j",
        "ZADD h 4611686018427387904 k -4611686018427387904 l 4611686018427387903 m", "ZSCAN h 0",
        "ZRANGE h 0 -1 WITHSCORES"],
    "wrongtype": [
        "SET str v", "ZADD str 1 a", "ZADD str x a", "ZADD str XX 1 a", "ZREM str a", "ZCARD str",
        "ZSCORE str a", "ZRANK str a", "ZCOUNT str 1 2", "ZCOUNT str x 2", "ZLEXCOUNT str - +",
        "ZRANGE str 0 -1", "ZRANGE str x 1", "ZRANGEBYSCORE str 1 2", "ZRANGEBYLEX str - +",
        "ZREMRANGEBYRANK str 0 1", "ZREMRANGEBYSCORE str 1 2", "ZREMRANGEBYLEX str - +",
        "ZPOPMAX str", "ZRANDMEMBER str", "ZRANDMEMBER str 1", "ZRANDMEMBER str x", "ZSCAN str 0",
        "ZSCAN str x", "HSET h f v", "ZADD h 1 a", "LPUSH l a", "ZUNION 1 l", "ZADD z 1 a",
        "GET z", "SADD z a", "HSET z f v", "LPUSH z a", "INCR z", "SCARD z", "TYPE z"],
    "big-zset": [
        BIG_ZADD, "ZCARD big", "ZSCORE big m150", "ZRANK big m150", "ZREVRANK big m150",
        "ZRANGE big 100 110 WITHSCORES", "ZRANGE big 5 20 BYSCORE LIMIT 3 7 WITHSCORES",
        "ZRANGEBYSCORE big (30 +inf", "ZREVRANGE big 0 5", "ZCOUNT big 10 (20", "ZREM big m000 m001",
        "ZPOPMIN big 3", "ZPOPMAX big 2", "ZREMRANGEBYSCORE big 5 7", "ZREMRANGEBYRANK big 10 60",
        "ZRANGE big 0 -1 WITHSCORES", "ZADD other 1 m100 2 m101 3 zzz", "ZINTER 2 big other WITHSCORES",
        "ZUNIONSTORE u 2 big other", "ZRANGE u 0 -1 WITHSCORES", "ZDIFF 2 big other", "ZINTERCARD 2 big other"],
    "blocking-pops-at-once": [
        "ZADD z 1 a 2 b 3 c", "BZPOPMIN z 0", "BZPOPMAX z 0", "ZADD z 4 d", "BZPOPMIN nokey z 0",
        "BZMPOP 0 1 z MIN", "ZADD z 1 a 2 b 3 c", "BZMPOP 0 2 nokey z MAX COUNT 2",
        "BZMPOP 0 1 z min count 5", "EXISTS z", "BZPOPMIN z x", "BZPOPMIN z -1", "BZPOPMIN z",
        "BZMPOP x 1 z MIN", "BZMPOP x 0 z MIN", "BZMPOP 0 0 z MIN", "BZMPOP 0 1 z FOO",
        "BZMPOP 0 1 z MIN COUNT 0", "BZMPOP 0 1 z", "BZMPOP -1 1 z MIN", "BZMPOP 0 3 z MIN",
        "BZPOPMIN nokey 0.01", "BZMPOP 0.01 1 nokey MIN", "SET str v", "BZPOPMIN str 0",
        "BZPOPMIN nokey str 0", "BZMPOP 0 2 nokey str MIN", "ZADD y 1 a", "BZPOPMAX y str 0",
        "MULTI", "BZPOPMIN nokey 0", "BZMPOP 0 1 nokey MAX", "ZADD y 5 b", "BZPOPMAX y 0", "EXEC",
        "BZPOPMIN nokey inf", "BZPOPMIN nokey nan"],
    "generic-commands": [
        "ZADD z 1 a 2 b", "TYPE z", "EXISTS z", "RENAME z z2", "ZRANGE z2 0 -1 WITHSCORES", "TYPE z",
        "COPY z2 z3", "ZADD z3 3 c", "ZRANGE z2 0 -1", "ZRANGE z3 0 -1", "COPY z2 z3",
        "COPY z2 z3 REPLACE", "ZRANGE z3 0 -1", "MOVE z3 1", "EXISTS z3", "SELECT 1",
        "ZRANGE z3 0 -1 WITHSCORES", "TYPE z3", "COPY z3 z2 DB 0", "SELECT 0", "SET x v",
        "RENAME z2 x", "TYPE x", "DEL x", "ZADD a 1 1", "SET b v", "SADD c x",
        ScanAll(("TYPE", "zset")), ScanAll(("TYPE", "ZSET")), "EXPIRE a 100", "TTL a", "FLUSHDB", "DBSIZE"],
    # ZRANGESTORE builds a listpack first unless a rank range is known to be
    # longer than 128 (zrangeResultBeginStore): the members it adds before
    # converting lose a -0 score, those after keep it; ZUNIONSTORE builds a
    # skiplist and converts down only if small.
    # A listpack keeps no -0: a member set while the zset is still one, then
    # updated after the conversion (at the 129th member), keeps a later -0.
    "zadd-negative-zero-after-conversion": [
        ("ZADD", "z", "1", "a", *[x for i in range(128) for x in ("2", "b%d" % i)], "-0", "a"),
        "ZSCORE z a", "OBJECT ENCODING z",
        ("ZADD", "y", "-0", "a", *[x for i in range(128) for x in ("2", "b%d" % i)], "-0", "a"),
        "ZSCORE y a", ("ZADD", "x", "CH", "5", "a", "-0", "a", *[x for i in range(128) for x in ("2", "b%d" % i)]),
        "ZSCORE x a"],
    "zrangestore-negative-zero": [
        BIG_ZADD, "ZADD big -0 a -0 b", "ZADD big -0 " + "z" * 70, "ZSCORE big a",
        "ZRANGESTORE d big -inf +inf BYSCORE", "ZSCORE d a", "ZSCORE d " + "z" * 70, "ZSCORE d b",
        "ZRANGESTORE d big - + BYLEX", "ZSCORE d a", "ZRANGESTORE d big 0 -1", "ZSCORE d a",
        "ZRANGESTORE d big +inf -inf BYSCORE REV", "ZSCORE d a", "ZRANGE d 0 -1 WITHSCORES",
        "ZRANGESTORE d big 0 2", "ZSCORE d a", "OBJECT ENCODING d", "ZRANGESTORE d big -inf 0 BYSCORE",
        "ZRANGE d 0 -1 WITHSCORES", "OBJECT ENCODING d", "ZUNIONSTORE d 1 big", "ZSCORE d a",
        "ZRANGESTORE d big (-1 1 BYSCORE REV LIMIT 0 150", "ZRANGE d 0 -1 WITHSCORES",
        "OBJECT ENCODING d"],
}


test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_resp3_shapes(pair):
    """The RESP3 types themselves: doubles for scores, [member, score] pairs
    for WITHSCORES, ZPOPMIN flat without a count and paired with one, ZMPOP
    nested, nulls."""
    for c in (pair.kv, pair.redis):
        c.call("HELLO", "3")
        c.call("ZADD", "z", "1.5", "a", "2", "b")
        assert c.call("ZSCORE", "z", "a").raw == b",1.5\r\n"
        assert c.call("ZSCORE", "z", "nope").raw == b"_\r\n"
        assert c.call("ZSCORE", "nokey", "a").raw == b"_\r\n"
        assert c.call("ZMSCORE", "z", "a", "x").raw == b"*2\r\n,1.5\r\n_\r\n"
        assert c.call("ZINCRBY", "z", "0", "b").raw == b",2\r\n"
        assert c.call("ZADD", "z", "XX", "INCR", "1", "nope").raw == b"_\r\n"
        assert c.call("ZRANK", "z", "nope").raw == b"_\r\n"
        assert c.call("ZRANGE", "z", "0", "-1", "WITHSCORES").raw == \
            b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,2\r\n"
        assert c.call("ZUNION", "1", "z", "WITHSCORES").raw == \
            b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,2\r\n"
        assert c.call("ZRANDMEMBER", "z", "-2", "WITHSCORES").raw.startswith(b"*2\r\n*2\r\n$1\r\n")
        assert c.call("ZRANDMEMBER", "nokey").raw == b"_\r\n"
        assert c.call("ZSCAN", "z", "0").raw == \
            b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$1\r\n2\r\n"
        assert c.call("ZPOPMIN", "z").raw == b"*2\r\n$1\r\na\r\n,1.5\r\n"
        assert c.call("ZPOPMIN", "nokey").raw == b"*0\r\n"
        c.call("ZADD", "z", "1", "a", "3", "c")
        assert c.call("ZPOPMAX", "z", "1").raw == b"*1\r\n*2\r\n$1\r\nc\r\n,3\r\n"
        assert c.call("ZMPOP", "1", "z", "MIN").raw == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n"
        assert c.call("ZMPOP", "1", "nokey", "MIN").raw == b"_\r\n"
        c.call("HELLO", "2")
        assert c.call("ZMPOP", "1", "nokey", "MIN").raw == b"*-1\r\n"
        assert c.call("ZMPOP", "1", "z", "MAX").raw == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"


def _check_random(c: RawClient, scores: dict[bytes, bytes]) -> None:
    n = len(scores)
    for count in (1, 2, n - 1, n, n + 5):
        got = c.call("ZRANDMEMBER", "z", str(count)).value
        assert len(got) == min(count, n) and len(set(got)) == len(got), got
        assert set(got) <= set(scores)
        flat = c.call("ZRANDMEMBER", "z", str(count), "WITHSCORES").value
        pairs = list(zip(flat[::2], flat[1::2]))
        assert len(pairs) == min(count, n) and len({m for m, _ in pairs}) == len(pairs)
        assert all(scores[m] == sc for m, sc in pairs)
    for count in (1, 3, 2 * n, 500):
        got = c.call("ZRANDMEMBER", "z", str(-count)).value
        assert len(got) == count and set(got) <= set(scores)
        flat = c.call("ZRANDMEMBER", "z", str(-count), "WITHSCORES").value
        assert len(flat) == 2 * count and all(scores[m] == sc for m, sc in zip(flat[::2], flat[1::2]))
    assert c.call("ZRANDMEMBER", "z").value in scores
    assert set(c.call("ZRANDMEMBER", "z", str(-40 * n)).value) == set(scores)  # not biased
    assert c.call("ZCARD", "z").value == n


@pytest.mark.parametrize("size", [5, BIG])
def test_zrandmember_properties(pair, size):
    scores = {b"m%d" % i: b"%d" % (i % 7) for i in range(size)}
    for c in (pair.kv, pair.redis):  # the same properties hold on both
        c.call("ZADD", "z", *[x for m, sc in scores.items() for x in (sc, m)])
        _check_random(c, scores)


def test_zrandmember_refuses_an_unbounded_repeat_count(pair):
    """Redis streams any count; here a reply is built first, so it has a named bound."""
    from kvserver.commands.zsets import MAX_RANDMEMBER_REPEATS
    pair.kv.call("ZADD", "z", "1", "a")
    reply = pair.kv.call("ZRANDMEMBER", "z", str(-(MAX_RANDMEMBER_REPEATS + 1)))
    assert reply.raw.startswith(b"-ERR count is out of range")


@pytest.mark.parametrize("resp", ["2", "3"])
def test_zscan_on_a_big_zset_is_bounded_and_complete(pair, resp):
    expected = {b"m%03d" % i: b"%d" % (i % 37) for i in range(BIG)}
    for c in (pair.kv, pair.redis):
        c.call("HELLO", resp)
        c.call(*BIG_ZADD)
        found = {}
        cursor, steps = b"0", 0
        while True:
            cursor, flat = c.call("ZSCAN", "big", cursor, "COUNT", "10").value
            assert len(flat) // 2 <= 10 * 8 + 10
            found.update(zip(flat[::2], flat[1::2]))
            steps += 1
            if cursor == b"0":
                break
            assert steps < 1000
        assert steps > 2 and found == expected
        cursor, flat = c.call("ZSCAN", "big", "0", "MATCH", "m01?", "COUNT", "1000").value
        assert cursor == b"0" and set(flat[::2]) == {b"m%03d" % i for i in range(10, 20)}


# --- random operations, whole replies compared with Redis -------------------------------------

ZKEYS = ["z1", "z2", "z3"]
MEMBERS = ["a", "b", "c", "d", "e", "f", "g", "h"]
SCORES = ["0", "1", "-1", "2", "1.5", "0.1", "0.2", "inf", "-inf", "-0", "1e300", "3", "7"]
BOUNDS = ["-inf", "+inf", "0", "1", "(1", "2", "(2", "1.5", "(0.1", "3", "(inf", "7"]
LEX = ["-", "+", "[a", "(a", "[c", "(d", "[e", "(h", "[b"]


def _zrandom_command(draw):
    k = draw(st.sampled_from(ZKEYS))
    m = draw(st.sampled_from(MEMBERS))
    sc = draw(st.sampled_from(SCORES))
    some = draw(st.lists(st.sampled_from(ZKEYS + ["s", "nokey"]), min_size=1, max_size=3))
    op = draw(st.sampled_from([
        "zadd", "zadd", "zadd", "zaddopt", "zincrby", "zrem", "zcard", "zscore", "zmscore",
        "zrank", "zcount", "zrange", "zrangebyscore", "zrangestore", "zremrangebyrank",
        "zremrangebyscore", "zpop", "zmpop", "setop", "setopstore", "zintercard", "lexadd",
        "lexread", "zremrangebylex", "sadd"]))
    n = draw(st.integers(-4, 6))
    n2 = draw(st.integers(-4, 6))
    lo, hi = draw(st.sampled_from(BOUNDS)), draw(st.sampled_from(BOUNDS))
    if op == "zadd":
        pairs = draw(st.lists(st.tuples(st.sampled_from(SCORES), st.sampled_from(MEMBERS)),
                              min_size=1, max_size=4))
        return ["ZADD", k, *[x for p in pairs for x in p]]
    if op == "zaddopt":
        opts = draw(st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=3))
        return ["ZADD", k, *opts, sc, m]
    if op == "zincrby":
        return ["ZINCRBY", k, sc, m]
    if op == "zrem":
        return ["ZREM", k, m, draw(st.sampled_from(MEMBERS))]
    if op == "zcard":
        return ["ZCARD", k]
    if op == "zscore":
        return ["ZSCORE", k, m]
    if op == "zmscore":
        return ["ZMSCORE", k, m, "zz"]
    if op == "zrank":
        return [draw(st.sampled_from(["ZRANK", "ZREVRANK"])), k, m]
    if op == "zcount":
        return ["ZCOUNT", k, lo, hi]
    if op == "zrange":
        rev = draw(st.sampled_from([[], ["REV"]]))
        ws = draw(st.sampled_from([[], ["WITHSCORES"]]))
        return ["ZRANGE", k, str(n), str(n2), *rev, *ws]
    if op == "zrangebyscore":
        cmd = draw(st.sampled_from(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]))
        limit = draw(st.sampled_from([[], ["LIMIT", str(n), str(n2)]]))
        ws = draw(st.sampled_from([[], ["WITHSCORES"]]))
        return [cmd, k, lo, hi, *ws, *limit]
    if op == "zrangestore":
        by = draw(st.sampled_from([[str(n), str(n2)], [lo, hi, "BYSCORE"]]))
        return ["ZRANGESTORE", draw(st.sampled_from(ZKEYS)), k, *by,
                *draw(st.sampled_from([[], ["REV"]]))]
    if op == "zremrangebyrank":
        return ["ZREMRANGEBYRANK", k, str(n), str(n2)]
    if op == "zremrangebyscore":
        return ["ZREMRANGEBYSCORE", k, lo, hi]
    if op == "zpop":
        cnt = draw(st.sampled_from([[], ["0"], ["1"], ["3"], ["10"]]))
        return [draw(st.sampled_from(["ZPOPMIN", "ZPOPMAX"])), k, *cnt]
    if op == "zmpop":
        return ["ZMPOP", str(len(some)), *some, draw(st.sampled_from(["MIN", "MAX"])),
                "COUNT", str(max(n, 1))]
    if op in ("setop", "setopstore"):
        kind = draw(st.sampled_from(["UNION", "INTER", "DIFF"]))
        extra = []
        if kind != "DIFF":
            if draw(st.booleans()):
                extra += ["WEIGHTS", *[draw(st.sampled_from(["1", "2", "-1", "0.5", "0", "inf"]))
                                       for _ in some]]
            if draw(st.booleans()):
                extra += ["AGGREGATE", draw(st.sampled_from(["SUM", "MIN", "MAX"]))]
        if op == "setopstore":
            return [f"Z{kind}STORE", draw(st.sampled_from(ZKEYS)), str(len(some)), *some, *extra]
        return [f"Z{kind}", str(len(some)), *some, *extra, "WITHSCORES"]
    if op == "zintercard":
        return ["ZINTERCARD", str(len(some)), *some, "LIMIT", str(max(n, 0))]
    if op == "lexadd":
        return ["ZADD", "lex", "0", m, "0", draw(st.sampled_from(MEMBERS))]
    if op == "lexread":
        a, b = draw(st.sampled_from(LEX)), draw(st.sampled_from(LEX))
        return draw(st.sampled_from([["ZLEXCOUNT", "lex", a, b], ["ZRANGEBYLEX", "lex", a, b],
                                     ["ZREVRANGEBYLEX", "lex", a, b, "LIMIT", str(n), str(n2)],
                                     ["ZRANGE", "lex", a, b, "BYLEX"]]))
    if op == "zremrangebylex":
        return ["ZREMRANGEBYLEX", "lex", draw(st.sampled_from(LEX)), draw(st.sampled_from(LEX))]
    return ["SADD", "s", m]


#: Every example starts from these, so even a short one reads populated keys.
SEED = [["ZADD", "z1", "1", "a", "2", "b", "3", "c", "1.5", "d", "-inf", "e", "0.1", "f"],
        ["ZADD", "z2", "2", "b", "7", "c", "inf", "g", "-1", "h"], ["ZADD", "z3", "0", "a"],
        ["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "e", "0", "h"], ["SADD", "s", "a", "g"]]


def _final_state(p: Pair) -> None:
    for k in ZKEYS + ["lex"]:
        p.same(("ZRANGE", k, "0", "-1", "WITHSCORES"))
        p.same(("TYPE", k))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.composite(lambda draw: _zrandom_command(draw))(), min_size=5, max_size=40),
       resp=st.sampled_from(["2", "3"]))
def test_random_operations_match_redis(kv_port, redis_port, steps, resp):
    """Random sorted-set commands over a few keys (and a set): every reply,
    scores included, equals Redis's byte for byte, and so does the end state."""
    p = Pair(kv_port, redis_port)
    try:
        p.reset()
        for c in (p.kv, p.redis):
            c.call("HELLO", resp)
        for argv in SEED + steps:
            p.same(tuple(argv))
        _final_state(p)
    finally:
        p.close()


# --- what Redis cannot show ------------------------------------------------------

def _session():
    core = Core(Config(port=0))
    logged = []
    core.log = lambda s, argv: logged.append(list(argv))  # noqa: E731
    return Session(core), logged


def _run(s, *argv):
    from kvserver import commands
    return commands.execute(s, [a if isinstance(a, bytes) else str(a).encode() for a in argv])


def _wal_records(data_dir) -> list[list[list[bytes]]]:
    """Each WAL record's effects (one record = one execution unit)."""
    from kvserver.fs import OSFileSystem
    from kvserver.wal import list_segments, scan_segment
    fs = OSFileSystem()
    out = []
    for first, path in list_segments(fs, str(data_dir)):
        for record in scan_segment(fs.read(path), path, first).records:
            out.append([argv for _, argv in record.effects])
    return out


def test_writes_log_their_deterministic_effect(kv_process, tmp_path):
    """ZADD logs the final scores of what changed (INCR/GT/LT resolved, %.17g
    text), ZINCRBY a ZADD of its exact result, pops and ZREMRANGE* ZREM of
    what they removed, *STORE DEL + ZADD of the result (or only DEL); reads
    and no-ops log nothing (checked through the WAL of a real process)."""
    server = kv_process()
    c = RawClient(server.port)
    try:
        c.call("ZADD", "z", "1", "a", "2", "b", "3", "c")
        c.call("ZADD", "z", "NX", "5", "a", "4", "d")          # only d is new
        c.call("ZADD", "z", "GT", "0", "a", "9", "b")          # only b changes
        c.call("ZADD", "z", "INCR", "0.1", "a")
        c.call("ZINCRBY", "z", "0.2", "a")
        c.call("ZADD", "z", "XX", "1", "nope")                 # no-op
        c.call("ZADD", "z", "NX", "1", "a")                    # no-op
        c.call("ZRANGE", "z", "0", "-1")
        c.call("ZRANDMEMBER", "z", "-3")
        c.call("ZPOPMIN", "z")
        c.call("ZPOPMAX", "z", "2")
        c.call("ZREM", "z", "nope")
        c.call("ZADD", "r", "1", "x", "2", "y", "3", "w")
        c.call("ZREMRANGEBYSCORE", "r", "(1", "2")
        c.call("ZREMRANGEBYRANK", "r", "5", "9")               # no-op
        c.call("ZMPOP", "2", "nokey", "r", "MIN", "COUNT", "5")
        c.call("ZUNIONSTORE", "u", "1", "z")
        c.call("ZINTERSTORE", "u", "2", "z", "nokey")
        c.call("ZINTERSTORE", "u", "2", "z", "nokey")          # empty, u missing: nothing
        c.call("ZRANGESTORE", "u2", "z", "0", "-1")
        left = c.call("ZRANGE", "z", "0", "-1", "WITHSCORES").value
    finally:
        c.close()
    server.kill9()
    records = [r for r in _wal_records(tmp_path / "data")]
    assert records == [
        [[b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c"]],
        [[b"ZADD", b"z", b"4", b"d"]],
        [[b"ZADD", b"z", b"9", b"b"]],
        [[b"ZADD", b"z", b"1.1000000000000001", b"a"]],
        [[b"ZADD", b"z", b"1.3", b"a"]],
        [[b"ZREM", b"z", b"a"]],
        [[b"ZREM", b"z", b"b", b"d"]],
        [[b"ZADD", b"r", b"1", b"x", b"2", b"y", b"3", b"w"]],
        [[b"ZREM", b"r", b"y"]],
        [[b"ZREM", b"r", b"x", b"w"]],
        [[b"ZADD", b"u", b"3", b"c"]],
        [[b"DEL", b"u"]],
        [[b"ZADD", b"u2", b"3", b"c"]],
    ]
    assert left == [b"c", b"3"]


def test_big_effects_are_logged_in_chunks_of_one_unit():
    from kvserver.commands import zsets
    s, logged = _session()
    old = zsets.LOG_CHUNK
    zsets.LOG_CHUNK = 3
    try:
        _run(s, "ZADD", "z", *[x for i in range(7) for x in (i, b"m%d" % i)])
        assert [len(a) for a in logged] == [8, 8, 4] and all(a[0] == b"ZADD" for a in logged)
        logged.clear()
        _run(s, "ZPOPMIN", "z", "5")
        assert logged == [[b"ZREM", b"z", b"m0", b"m1", b"m2"], [b"ZREM", b"z", b"m3", b"m4"]]
    finally:
        zsets.LOG_CHUNK = old


ZSET_SCRIPT = [
    ("ZADD", "z", "1", "a", "2", "b", "0.1", "c", "-0", "d", "inf", "e", "1e-310", "f"),
    ("ZINCRBY", "z", "0.2", "c"), ("ZINCRBY", "z", "0.7", "c"), ("ZADD", "z", "INCR", "1e-17", "a"),
    ("ZADD", "z", "GT", "CH", "3.3", "b", "0", "a"), ("ZADD", "z", "LT", "-0.30000000000000004", "a"),
    BIG_ZADD, ("ZINCRBY", "big", "-0", "m005"), ("ZREM", "big", "m007"), ("ZPOPMIN", "big", "3"),
    ("ZREMRANGEBYSCORE", "big", "(30", "33"), ("ZREMRANGEBYRANK", "big", "-10", "-5"),
    ("ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"), ("ZREMRANGEBYLEX", "lex", "(a", "[c"),
    ("ZADD", "gone", "1", "x"), ("ZREM", "gone", "x"), ("ZADD", "t", "5", "k"),
    ("PEXPIREAT", "t", "4102444800000"), ("ZADD", "bin", "1", "\x00", "2", "\xff" * 100),
    ("ZUNIONSTORE", "u", "3", "z", "big", "lex", "WEIGHTS", "0.1", "3", "7", "AGGREGATE", "SUM"),
    ("ZINTERSTORE", "v", "2", "big", "u", "AGGREGATE", "MAX"), ("ZDIFFSTORE", "w", "2", "big", "u"),
    ("ZRANGESTORE", "x", "big", "10", "(20", "BYSCORE", "REV", "LIMIT", "1", "5"),
    ("ZMPOP", "2", "nokey", "x", "MAX", "COUNT", "2"),
    ("ZADD", "negz", "-0", "a", "1", "\x01" * 70, "-0", "b"),  # a skiplist keeps -0
    ("ZUNIONSTORE", "negu", "2", "negz", "big", "WEIGHTS", "1", "0"),  # big, -0 scores first
    ("ZSCORE", "negu", "a"), ("ZSCORE", "negu", "m000"), ("COPY", "z", "zc"), ("ZADD", "zc", "9", "new"),
    ("RENAME", "zc", "zr"), ("MOVE", "zr", "2"),
    # a member updated to -0 after the 129th member converted the zset keeps it
    ("ZADD", "rep", "1", "a", *[x for i in range(128) for x in ("2", "b%d" % i)], "-0", "a"),
    ("ZRANGESTORE", "rs", "negu", "-inf", "+inf", "BYSCORE"),  # listpack first: -0 lost
    ("COPY", "big", "bc"), ("ZPOPMIN", "bc", "3"), ("ZREMRANGEBYRANK", "bc", "0", "20"),
]


def _state(port: int) -> list:
    c = RawClient(port)
    try:
        out = []
        for db in ("0", "2"):
            c.call("SELECT", db)
            for key in sorted(c.call("KEYS", "*").value):
                out.append((db, key, c.call("TYPE", key).raw, c.call("PEXPIRETIME", key).raw,
                            c.call("ZRANGE", key, "0", "-1", "WITHSCORES").raw))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("how", ["kill9", "save-then-kill9", "save-then-sigterm"])
def test_zsets_survive_restart_with_bit_exact_scores(kv_process, redis_port, how):
    """kill -9 (WAL replay) and SAVE (the checkpoint codec) give back every
    zset with the same scores to the last bit (%.17g replies compared raw),
    equal to what Redis holds after the same script."""
    server = kv_process()
    kv, redis = RawClient(server.port), RawClient(redis_port)
    try:
        redis.call("FLUSHALL")
        for argv in ZSET_SCRIPT:
            assert kv.call(*argv).raw == redis.call(*argv).raw, argv
        picked = kv.call("ZRANDMEMBER", "big", "5").value  # random, so removed by name on Redis
        assert kv.call("ZREM", "big", *picked).value == redis.call("ZREM", "big", *picked).value == 5
        if how != "kill9":
            assert kv.call("SAVE").raw == b"+OK\r\n"
            for c in (kv, redis):  # a WAL record past the checkpoint
                c.call("ZINCRBY", "z", "0.1", "c")
    finally:
        kv.close()
        redis.close()
    before = _state(server.port)
    assert before == _state(redis_port)
    if how == "save-then-sigterm":
        assert server.terminate() == 0
    else:
        server.kill9()
    again = kv_process()
    assert _state(again.port) == before


def test_codec_round_trip_registration_and_encodings():
    assert BY_KIND[5] is ZSET and BY_TYPE[ZSet] is ZSET and ZSET.name == "zset"
    z = ZSet()
    for i in range(10):
        z.add(b"m%d" % i, i / 3)
    z.add(b"neg", float("-inf"))
    assert codec_of(z) is ZSET and ZSET.encoding(z) == "listpack"
    back = ZSET.decode(memoryview(ZSET.encode(z)))
    assert type(back) is ZSet and list(back.items()) == list(z.items()) and back.nbytes == z.nbytes
    back.check()
    assert ZSET.size(z) == len(ZSET.encode(z))
    big = ZSet((b"m%d" % i, float(i % 13)) for i in range(5000))
    assert ZSET.size(big) == len(ZSET.encode(big)) and len(big._lists) > 1
    assert list(ZSET.decode(ZSET.encode(big)).items()) == list(big.items())
    z.add(b"x" * 65, 1.0)
    assert ZSET.encoding(z) == "skiplist"
    z.discard(b"x" * 65)
    assert ZSET.encoding(z) == "skiplist"  # Redis never converts back
    assert ZSET.encoding(ZSET.decode(ZSET.encode(z))) == "listpack"  # a load judges afresh
    assert ZSET.encoding(ZSet((b"%d" % i, 0.0) for i in range(129))) == "skiplist"
    assert ZSET.encoding(ZSet((b"%d" % i, 0.0) for i in range(128))) == "listpack"
    assert ZSET.encoding(ZSet([(b"y" * 64, 0.0)])) == "listpack"
    for bad in (b"", b"\x01\x00\x00\x00", ZSET.encode(z) + b"x", ZSET.encode(z)[:-1],
                struct.pack("<IIddII", 2, 2, 1, 1, 1, 1) + b"aa",     # a member twice
                struct.pack("<IIddII", 2, 2, 2, 1, 1, 1) + b"ab",     # out of order
                struct.pack("<IIddII", 2, 2, 1, 2, 1, 2) + b"ab",     # lengths past the end
                struct.pack("<IIdIIdI", 2, 1, 1, 1, 0, 2, 1) + b"ab",  # an empty block
                struct.pack("<IIdIIdI", 3, 1, 1, 1, 1, 2, 1) + b"ab",  # fewer entries than said
                struct.pack("<IIdI", 1, 1, float("nan"), 1) + b"a"):
        with pytest.raises((ValueError, IndexError, struct.error)):
            ZSET.decode(memoryview(bad))


def test_encoding_follows_redis_conversions():
    """OBJECT ENCODING's fact (``big``): a listpack holds no -0 (Redis stores
    "-0" as the integer 0), a skiplist does; stores are judged by contents."""
    s, _ = _session()
    _run(s, "ZADD", "z", "-0", "a")
    assert not s.db.data[b"z"].big and _run(s, "ZSCORE", "z", "a") == 0.0
    assert str(_run(s, "ZSCORE", "z", "a")) == "0.0"
    _run(s, "ZADD", "z", "1", b"x" * 65, "-0", "b")
    assert s.db.data[b"z"].big and str(_run(s, "ZSCORE", "z", "b")) == "-0.0"
    _run(s, "ZADD", "big", *[x for i in range(129) for x in (i, b"m%d" % i)])
    assert s.db.data[b"big"].big
    _run(s, "ZREMRANGEBYRANK", "big", "0", "120")
    assert s.db.data[b"big"].big
    _run(s, "ZUNIONSTORE", "u", "1", "big")
    assert not s.db.data[b"u"].big
    _run(s, "ZRANGESTORE", "r", "z", "0", "-1")
    assert s.db.data[b"r"].big  # a member longer than 64 bytes


def test_copy_gives_an_independent_zset():
    s, _ = _session()
    _run(s, "ZADD", "z", "1", "a", "2", "b")
    _run(s, "COPY", "z", "c")
    assert s.db.data[b"z"] is not s.db.data[b"c"]
    _run(s, "ZADD", "c", "5", "a", "3", "x")
    _run(s, "ZREM", "c", "b")
    assert list(s.db.data[b"z"].items()) == [(b"a", 1.0), (b"b", 2.0)]
    assert list(s.db.data[b"c"].items()) == [(b"x", 3.0), (b"a", 5.0)]


def test_running_checkpoint_keeps_the_pre_image():
    """A zset changed while a checkpoint runs: the snapshot keeps the old
    entries (a copy sharing the sublists, copied on write)."""
    s, _ = _session()
    preserved = []

    class Snap:
        def preserve(self, db, key):
            preserved.append((key, codec_of(db.data[key]).snapshot_copy(db.data[key])))

    _run(s, "ZADD", "z", *[x for i in range(5000) for x in (i, b"m%d" % i)])
    s.core.keyspace.set_snapshot(Snap())
    _run(s, "ZADD", "z", "0.5", "new", "-1", "m4999")
    _run(s, "ZREM", "z", "nope")  # no change: no pre-image
    s.core.keyspace.set_snapshot(None)
    _run(s, "ZREMRANGEBYRANK", "z", "10", "3000")
    [(key, copy)] = preserved
    assert key == b"z" and len(copy) == 5000
    assert ZSET.decode(ZSET.encode(copy)).items().__next__() == (b"m0", 0.0)
    assert list(copy.items()) == [(b"m%d" % i, float(i)) for i in range(5000)]
    live = s.db.data[b"z"]
    live.check()
    copy.check()
    assert len(live) == 5001 - 2991 and live.score(b"m4999") == -1.0


@pytest.mark.parametrize("load", [4, 1000])
def test_structure_invariants_under_random_operations(monkeypatch, load):
    """The sublists, maxes, Fenwick index and copy-on-write flags stay right
    through random adds, removals, range removals and copies (a tiny LOAD
    exercises splits, merges and the index on every step)."""
    import kvserver.types.zset as zmod
    monkeypatch.setattr(zmod, "LOAD", load)
    rng = random.Random(load)
    z, model, copies = ZSet(), {}, []
    for step in range(3000):
        op = rng.random()
        m = b"m%d" % rng.randrange(300)
        if op < 0.5:
            sc = float(rng.randrange(-20, 20))
            z.add(m, sc)
            model[m] = sc
        elif op < 0.7:
            assert (z.discard(m) is not None) == (m in model)
            model.pop(m, None)
        elif op < 0.78 and len(z):
            a = rng.randrange(len(z) + 1)
            b = rng.randrange(a, len(z) + 1)
            expect = sorted((sc, m) for m, sc in model.items())[a:b]
            assert z.remove_range(a, b) == expect
            for _, m in expect:
                del model[m]
        elif op < 0.8:
            copies.append((z.copy(), dict(model)))
        elif len(z):
            flat = sorted((sc, m) for m, sc in model.items())
            x = float(rng.randrange(-21, 21))
            assert z.score_position(x, False, False) == sum(1 for sc, _ in flat if sc < x)
            assert z.score_position(x, True, True) == sum(1 for sc, _ in flat if sc < x)
            assert z.score_position(x, True, False) == sum(1 for sc, _ in flat if sc <= x)
            a = rng.randrange(len(flat))
            assert z.entry_at(a) == flat[a] and z.rank(flat[a][1]) == a
        if step % 50 == 0:
            z.check()
    z.check()
    assert dict(z.items()) == model
    for copy, expect in copies:
        copy.check()
        assert dict(copy.items()) == expect


def test_notifications_use_redis_event_names():
    s, _ = _session()
    events = []
    s.core.notify_flags = -1
    s.core.keyspace_event = lambda kind, event, db, key: events.append((event, key))
    script = [
        (("ZADD", "z", "1", "a", "2", "b", "3", "c"), [(b"zadd", b"z")]),
        (("ZADD", "z", "NX", "1", "a"), []),
        (("ZINCRBY", "z", "1", "a"), [(b"zincr", b"z")]),
        (("ZADD", "z", "INCR", "1", "a"), [(b"zincr", b"z")]),
        (("ZREM", "z", "nope"), []),
        (("ZREM", "z", "a"), [(b"zrem", b"z")]),
        (("ZPOPMIN", "z"), [(b"zpopmin", b"z")]),
        (("ZPOPMAX", "z", "5"), [(b"zpopmax", b"z"), (b"del", b"z")]),
        (("ZADD", "z", "1", "a", "2", "b", "3", "c"), [(b"zadd", b"z")]),
        (("ZREMRANGEBYRANK", "z", "0", "0"), [(b"zremrangebyrank", b"z")]),
        (("ZREMRANGEBYSCORE", "z", "2", "2"), [(b"zremrangebyscore", b"z")]),
        (("ZREMRANGEBYLEX", "z", "-", "+"), [(b"zremrangebylex", b"z"), (b"del", b"z")]),
        (("ZADD", "z", "1", "a"), [(b"zadd", b"z")]),
        (("ZUNIONSTORE", "d", "1", "z"), [(b"zunionstore", b"d")]),
        (("ZINTERSTORE", "d", "1", "z"), [(b"zinterstore", b"d")]),
        (("ZDIFFSTORE", "d", "1", "z"), [(b"zdiffstore", b"d")]),
        (("ZRANGESTORE", "d", "z", "0", "-1"), [(b"zrangestore", b"d")]),
        (("ZRANGESTORE", "d", "z", "5", "9"), [(b"del", b"d")]),
        (("ZDIFFSTORE", "d", "2", "z", "z"), []),
        (("ZMPOP", "1", "z", "MAX"), [(b"zpopmax", b"z"), (b"del", b"z")]),
    ]
    for argv, expected in script:
        events.clear()
        _run(s, *argv)
        assert events == expected, argv


def test_modified_fires_only_for_real_changes():
    s, _ = _session()
    seen = []
    s.core.keyspace.add_modified_listener(lambda db, key: seen.append(key))
    _run(s, "ZADD", "z", "1", "a")
    assert seen == [b"z"]
    for argv in (("ZADD", "z", "NX", "5", "a"), ("ZADD", "z", "XX", "1", "b"), ("ZADD", "z", "1", "a"),
                 ("ZADD", "z", "GT", "0", "a"), ("ZREM", "z", "b"), ("ZINCRBY", "z", "x", "a"),
                 ("ZREMRANGEBYSCORE", "z", "5", "6"), ("ZPOPMIN", "nokey"), ("ZADD", "z", "INCR", "nan", "a")):
        _run(s, *argv)
    assert seen == [b"z"]  # refused or no-op writes signal nothing


def _blocked_then_fed(c_block: RawClient, c_feed: RawClient, request: tuple, feeds: list) -> list:
    """Send a blocking request on one connection, run ``feeds`` on another,
    return every feed's reply then the blocked one's."""
    from kvserver.protocol import encode_command
    c_block.send(encode_command(list(request)))
    for _ in range(200):  # until the server lists the client as blocked
        if b"cmd=" + request[0].lower().encode() + b" " in c_feed.call("CLIENT", "LIST").value \
                and b"flags=b" in c_feed.call("CLIENT", "LIST").value:
            break
        time.sleep(0.005)
    out = [c_feed.call(*f).raw for f in feeds]
    return out + [c_block.read().raw]


@pytest.mark.parametrize("resp", ["2", "3"])
def test_blocked_pops_are_served_as_redis_serves_them(kv_port, redis_port, resp):
    """BZPOPMIN/BZPOPMAX/BZMPOP that block are woken by a ZADD (the first
    waited key that gets members), keep waiting while a key holds another
    type or nothing, and answer what Redis answers, in RESP2 and RESP3."""
    scripts = [
        (("BZPOPMIN", "k1", "k2", "0"), [("ZADD", "k2", "2", "b", "1", "a")]),
        (("BZPOPMAX", "k1", "5"), [("SET", "k1", "str"), ("DEL", "k1"), ("ZADD", "k1", "1", "x", "9", "y")]),
        (("BZMPOP", "0", "2", "k5", "k3", "MAX", "COUNT", "3"), [("ZADD", "k3", "1", "p", "2", "q")]),
        (("BZMPOP", "0", "1", "k4", "MIN"), [("MULTI",), ("ZADD", "k4", "1", "a"), ("ZREM", "k4", "a"),
                                              ("EXEC",), ("ZADD", "k4", "3", "c")]),
    ]
    results = []
    for port in (kv_port, redis_port):
        a, b = RawClient(port), RawClient(port)
        try:
            b.call("FLUSHALL")
            for c in (a, b):
                c.call("HELLO", resp)
            got = [_blocked_then_fed(a, b, req, feeds) for req, feeds in scripts]
            got.append(b.call("ZRANGE", "k1", "0", "-1", "WITHSCORES").raw)
            got.append(b.call("ZRANGE", "k2", "0", "-1", "WITHSCORES").raw)
            got.append(b.call("EXISTS", "k3", "k4").raw)
            results.append(got)
        finally:
            a.close()
            b.close()
    assert results[0] == results[1]


def test_blocked_pop_times_out_with_a_null_array(kv_port, redis_port):
    for port in (kv_port, redis_port):
        c = RawClient(port)
        try:
            assert c.call("BZPOPMIN", "nokey", "0.05").raw == b"*-1\r\n"
            assert c.call("BZMPOP", "0.05", "1", "nokey", "MIN").raw == b"*-1\r\n"
            c.call("HELLO", "3")
            assert c.call("BZPOPMAX", "nokey", "0.05").raw == b"_\r\n"
        finally:
            c.close()


def test_a_served_blocked_pop_is_logged_as_zrem_after_the_zadd(kv_process, tmp_path):
    server = kv_process()
    a, b = RawClient(server.port), RawClient(server.port)
    try:
        replies = _blocked_then_fed(a, b, ("BZPOPMIN", "q", "0"), [("ZADD", "q", "2", "y", "1", "x")])
        assert replies[-1] == b"*3\r\n$1\r\nq\r\n$1\r\nx\r\n$1\r\n1\r\n"
        replies = _blocked_then_fed(a, b, ("BZMPOP", "0", "1", "r", "MAX", "COUNT", "2"),
                                    [("ZADD", "r", "1", "m")])
    finally:
        a.close()
        b.close()
    server.kill9()
    assert _wal_records(tmp_path / "data") == [
        [[b"ZADD", b"q", b"2", b"y", b"1", b"x"]], [[b"ZREM", b"q", b"x"]],
        [[b"ZADD", b"r", b"1", b"m"]], [[b"ZREM", b"r", b"m"]]]
    again = kv_process()
    c = RawClient(again.port)
    try:
        assert c.call("ZRANGE", "q", "0", "-1", "WITHSCORES").value == [b"y", b"2"]
        assert c.call("EXISTS", "r").value == 0
    finally:
        c.close()


def test_a_copy_takes_range_removals_before_its_first_score_lookup():
    """COPY gives the destination a ZSet.copy, whose member dict is built on
    first use: a ZPOPMIN / ZREMRANGEBYRANK on it before any score lookup must
    work (it raised KeyError and left the sublists changed without the dict)."""
    s, logged = _session()
    _run(s, "ZADD", "z", *[x for i in range(20) for x in (i, b"m%d" % i)])
    _run(s, "COPY", "z", "c")
    assert _run(s, "ZPOPMIN", "c", "3") == [b"m0", 0.0, b"m1", 1.0, b"m2", 2.0]
    _run(s, "COPY", "z", "d")
    assert _run(s, "ZREMRANGEBYRANK", "d", "0", "11") == 12
    _run(s, "COPY", "z", "e")
    assert _run(s, "ZPOPMAX", "e") == [b"m19", 19.0]
    for key, size in ((b"z", 20), (b"c", 17), (b"d", 8), (b"e", 19)):
        s.db.data[key].check()
        assert len(s.db.data[key]) == size


@pytest.mark.parametrize("load", [4, 1000])
def test_copies_and_originals_change_independently(monkeypatch, load):
    """Copy-on-write both ways: random adds, removals and range removals on
    several copies of copies and on the original (through splits and merges,
    with a tiny LOAD); each must keep exactly its own entries."""
    import kvserver.types.zset as zmod
    monkeypatch.setattr(zmod, "LOAD", load)
    for seed in range(6):
        rng = random.Random(seed)
        objs = [(ZSet(), {})]
        for step in range(1500):
            z, model = objs[rng.randrange(len(objs))]
            op = rng.random()
            m = b"m%d" % rng.randrange(200)
            if op < 0.45:
                sc = float(rng.randrange(-20, 20))
                z.add(m, sc)
                model[m] = sc
            elif op < 0.65:
                assert (z.discard(m) is not None) == (m in model)
                model.pop(m, None)
            elif op < 0.8 and len(z):
                a = rng.randrange(len(z) + 1)
                b = rng.randrange(a, min(len(z), a + rng.choice([3, 10, 50, 500])) + 1)
                expect = sorted((sc, m) for m, sc in model.items())[a:b]
                assert z.remove_range(a, b) == expect
                for _, gone in expect:
                    del model[gone]
            elif op < 0.86 and len(objs) < 8:
                objs.append((z.copy(), dict(model)))
            if step % 25 == 0:
                for other, expect in objs:
                    other.check()
                    assert dict(other.items()) == expect
        for other, expect in objs:
            other.check()
            assert dict(other.items()) == expect
