"""An independent transcription of the engine's PRNG (src/rng.rs), for the values pinned in
tests/sim/kernel.rs: xoshiro256** seeded by splitmix64 (reference C at prng.di.unimi.it),
Lemire's bounded draw, and the exponential ziggurat of Marsaglia and Tsang (2000), with its
tables built the same way. Run: python3 tests/vectors/prng.py"""
import math
M=(1<<64)-1
def rotl(x,k): return ((x<<k)|(x>>(64-k)))&M
def splitmix(st):
    st=(st+0x9e3779b97f4a7c15)&M; z=st
    z=((z^(z>>30))*0xbf58476d1ce4e5b9)&M; z=((z^(z>>27))*0x94d049bb133111eb)&M
    return st, z^(z>>31)
class X:
    def __init__(s,seed):
        st=seed; s.s=[]
        for _ in range(4):
            st,v=splitmix(st); s.s.append(v)
    def next(s):
        a=s.s; r=(rotl((a[1]*5)&M,7)*9)&M; t=(a[1]<<17)&M
        a[2]^=a[0]; a[3]^=a[1]; a[1]^=a[2]; a[0]^=a[3]; a[2]^=t; a[3]=rotl(a[3],45); return r
    def below(s,b):
        while True:
            m=s.next()*b; lo=m&M
            if lo >= ((-b)&M)%b: return m>>64
    def unit(s): return (s.next()>>11)/2.0**53
    def open_unit(s): return ((s.next()>>11)+0.5)/2.0**53
R=7.69711747013105; V=3.949659822581572e-3
x=[0.0]*257; x[0]=V/math.exp(-R); x[1]=R
for i in range(2,256): x[i]=-math.log(V/x[i-1]+math.exp(-x[i-1]))
f=[math.exp(-v) for v in x]
def exp_unit(r):
    while True:
        b=r.next(); i=b&0xff; xx=((b>>11)/2.0**53)*x[i]
        if xx<x[i+1]: return xx
        if i==0: return R-math.log(r.open_unit())
        if f[i+1]+(f[i]-f[i+1])*r.unit() < math.exp(-xx): return xx
r=X(7)
print([r.below(1000) for _ in range(5)])
print([int(1e6*exp_unit(r)+0.5) for _ in range(3)])
# After 100,000 draws the wedge and tail paths have run many times.
r=X(3)
print([int(1e6*exp_unit(r)+0.5) for _ in range(100000)][-3:])
