// The machine's f32 FMA ceiling: 12 independent 256-bit FMA chains per thread, 1 and 2 threads (AVX2 + FMA).
//   gcc -O2 -mavx2 -mfma -pthread bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <pthread.h>
#define N 200000000L
static double secs(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float sink[8];
void* run(void* arg){
  __m256 a=_mm256_set1_ps(1.0000001f), b=_mm256_set1_ps(0.9999999f);
  __m256 c0=_mm256_setzero_ps(),c1=c0,c2=c0,c3=c0,c4=c0,c5=c0,c6=c0,c7=c0,c8=c0,c9=c0,c10=c0,c11=c0;
  for(long i=0;i<N/12;i++){c0=_mm256_fmadd_ps(a,c0,b);c1=_mm256_fmadd_ps(a,c1,b);c2=_mm256_fmadd_ps(a,c2,b);c3=_mm256_fmadd_ps(a,c3,b);c4=_mm256_fmadd_ps(a,c4,b);c5=_mm256_fmadd_ps(a,c5,b);c6=_mm256_fmadd_ps(a,c6,b);c7=_mm256_fmadd_ps(a,c7,b);c8=_mm256_fmadd_ps(a,c8,b);c9=_mm256_fmadd_ps(a,c9,b);c10=_mm256_fmadd_ps(a,c10,b);c11=_mm256_fmadd_ps(a,c11,b); __asm__ volatile("" : "+x"(c0),"+x"(c1),"+x"(c2),"+x"(c3),"+x"(c4),"+x"(c5),"+x"(c6),"+x"(c7),"+x"(c8),"+x"(c9),"+x"(c10),"+x"(c11));}
  __m256 s=_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0,c1),_mm256_add_ps(c2,c3)),_mm256_add_ps(_mm256_add_ps(c4,c5),_mm256_add_ps(c6,c7)));
  s=_mm256_add_ps(s,_mm256_add_ps(_mm256_add_ps(c8,c9),_mm256_add_ps(c10,c11)));
  _mm256_storeu_ps(sink,s); return 0;}
int main(){ for(int th=1;th<=2;th++){ pthread_t t[2]; double t0=secs(); for(int i=0;i<th;i++)pthread_create(&t[i],0,run,0); for(int i=0;i<th;i++)pthread_join(t[i],0); double dt=secs()-t0;
  printf("%d thread(s): %.1f GFLOP/s\n", th, th*(double)(N/12*12)*16/dt/1e9);} return 0;}
