// sysv-probe: makes, attaches, writes and removes a SysV shared memory segment, a semaphore
// set and a message queue. Prints "sysv-probe: ok". Guest-side test helper.
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

int main(void) {
  int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  if (shm < 0) return perror("shmget"), 1;
  char* p = shmat(shm, NULL, 0);
  if (p == (void*)-1) return perror("shmat"), 1;
  strcpy(p, "hello");
  shmdt(p);
  shmctl(shm, IPC_RMID, NULL);
  int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  if (sem < 0) return perror("semget"), 1;
  semctl(sem, 0, IPC_RMID);
  int mq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  if (mq < 0) return perror("msgget"), 1;
  msgctl(mq, IPC_RMID, NULL);
  printf("sysv-probe: ok\n");
  return 0;
}
