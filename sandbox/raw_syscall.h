// System calls that leave errno alone, for a process whose memory (and so
// errno, which lives in it) is shared with another running process: the
// sandbox while its pid 1 runs, pid 1 while the command prepares its execve.
#ifndef LONGSHORE_SANDBOX_RAW_SYSCALL_H_
#define LONGSHORE_SANDBOX_RAW_SYSCALL_H_

namespace longshore::sandbox {

// Returns what the kernel returns: a result >= 0, or -errno.
inline long RawSyscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0,
                       long a4 = 0, long a5 = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
                   : "memory");
  return x0;
#else
#error "RawSyscall: add this architecture's system call convention"
#endif
}

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_RAW_SYSCALL_H_
