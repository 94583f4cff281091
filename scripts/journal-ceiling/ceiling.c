/*
 * The SQLite ceiling for `vertebra bench journal`: the same statements the journal runs for one
 * inbound stanza record (resolve the conversation, next sequence number, INSERT into stanzas with
 * its two unique indexes), on the same schema and pragmas, in a plain C loop with no Swift, no
 * actor, no continuations. `batch` records per transaction, round-robin over `subs` conversations
 * (what 256 concurrent submitters produce). Set BG=1 to checkpoint from a second connection.
 *
 *   ./run.sh                      # builds, extracts the schema from Schema.swift, runs the table
 *   ./ceiling DB SYNC BATCH SUBS SECONDS [PAGE_SIZE] [WAL_AUTOCHECKPOINT]
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
static volatile int stop=0; static const char*gpath;
static void*ck_thread(void*a){sqlite3*d; sqlite3_open(gpath,&d); sqlite3_busy_timeout(d,5000); sqlite3_exec(d,"PRAGMA synchronous=NORMAL",0,0,0); while(!stop){int log=0,ckd=0; sqlite3_wal_checkpoint_v2(d,0,SQLITE_CHECKPOINT_PASSIVE,&log,&ckd); usleep(20000);} sqlite3_close(d); return 0;}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static void ck(int rc, sqlite3*db,const char*w){if(rc!=SQLITE_OK&&rc!=SQLITE_DONE&&rc!=SQLITE_ROW){fprintf(stderr,"%s: %s\n",w,sqlite3_errmsg(db));exit(1);}}
int main(int argc,char**argv){
  const char*path=argv[1]; const char*sync=argv[2]; int batch=atoi(argv[3]); int subs=atoi(argv[4]); double secs=atof(argv[5]);
  int pagesize = argc>6?atoi(argv[6]):4096; int ckpt = argc>7?atoi(argv[7]):4096;
  unlink(path); char b[512]; snprintf(b,512,"%s-wal",path); unlink(b); snprintf(b,512,"%s-shm",path); unlink(b);
  sqlite3*db; ck(sqlite3_open(path,&db),db,"open");
  FILE*f=fopen(getenv("SCHEMA") ? getenv("SCHEMA") : "schema.sql","r"); if(!f){perror("schema.sql"); return 1;} static char sch[65536]; size_t n=fread(sch,1,65535,f); sch[n]=0;
  char pr[256]; snprintf(pr,256,"PRAGMA page_size=%d; PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=%d; PRAGMA synchronous=%s;",pagesize,ckpt,sync);
  ck(sqlite3_exec(db,pr,0,0,0),db,"pragma");
  ck(sqlite3_exec(db,sch,0,0,0),db,"schema");
  sqlite3_exec(db,"BEGIN",0,0,0);
  for(int s=0;s<subs;s++){ char q[512]; snprintf(q,512,"INSERT INTO jobs(token,operation,arguments,scope,state,attempts,created,updated) VALUES('%032x','/bench/noop','','x','running',1,0,0); INSERT INTO conversations(token,job,peer,role,state,current,created,updated) VALUES('%032x:b','%032x','peer%d@bench/r','performer','open',1,0,0);",s,s,s,s); ck(sqlite3_exec(db,q,0,0,0),db,"seed");}
  sqlite3_exec(db,"COMMIT",0,0,0);
  sqlite3_stmt *sel,*seq,*ins,*beg,*com;
  sqlite3_prepare_v2(db,"SELECT id, token, job, peer, current FROM conversations WHERE id = ?",-1,&sel,0);
  sqlite3_prepare_v2(db,"SELECT coalesce(max(sequence), 0) + 1 FROM stanzas WHERE conversation = ?",-1,&seq,0);
  sqlite3_prepare_v2(db,"INSERT INTO stanzas (conversation, sequence, direction, peer, iq_id, kind, body, answer, sent, acked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",-1,&ins,0);
  sqlite3_prepare_v2(db,"BEGIN IMMEDIATE",-1,&beg,0); sqlite3_prepare_v2(db,"COMMIT",-1,&com,0);
  char body[300]; snprintf(body,300,"<data xmlns='http://xmlschema.engineyard.com/agent/api' token='0123456789abcdef0123456789abcdef:b'><string name='chunk'>%s</string></data>","xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
  pthread_t th; int bg=getenv("BG")!=0; gpath=path; if(bg) pthread_create(&th,0,ck_thread,0);
  int *num=calloc(subs,sizeof(int)); long recs=0,txns=0; double t0=now(); int cur=0;
  while(now()-t0<secs){
    sqlite3_step(beg); sqlite3_reset(beg);
    for(int i=0;i<batch;i++){ int s=cur; cur=(cur+1)%subs; num[s]++;
      sqlite3_bind_int64(sel,1,s+1); ck(sqlite3_step(sel),db,"sel"); char peer[64]; snprintf(peer,64,"%s",sqlite3_column_text(sel,3)); sqlite3_reset(sel);
      sqlite3_bind_int64(seq,1,s+1); ck(sqlite3_step(seq),db,"seq"); long sq=sqlite3_column_int64(seq,0); sqlite3_reset(seq);
      char iq[32]; snprintf(iq,32,"%d-%d",s,num[s]);
      sqlite3_bind_int64(ins,1,s+1); sqlite3_bind_int64(ins,2,sq); sqlite3_bind_text(ins,3,"in",-1,SQLITE_TRANSIENT); sqlite3_bind_text(ins,4,peer,-1,SQLITE_TRANSIENT);
      sqlite3_bind_text(ins,5,iq,-1,SQLITE_TRANSIENT); sqlite3_bind_text(ins,6,"data",-1,SQLITE_TRANSIENT); sqlite3_bind_text(ins,7,body,-1,SQLITE_TRANSIENT);
      sqlite3_bind_text(ins,8,"<iq type='result'/>",-1,SQLITE_TRANSIENT); sqlite3_bind_int64(ins,9,1700000000000); sqlite3_bind_int64(ins,10,1700000000000);
      ck(sqlite3_step(ins),db,"ins"); sqlite3_reset(ins); recs++; }
    ck(sqlite3_step(com),db,"commit"); sqlite3_reset(com); txns++;
  }
  double el=now()-t0; stop=1; if(bg) pthread_join(th,0);
  char wb[600]; snprintf(wb,600,"%s-wal",path); FILE*wf=fopen(wb,"r"); fseek(wf,0,SEEK_END); printf("wal bytes %ld  ",ftell(wf));
  printf("ckpt=%d sync=%s batch=%d subs=%d page=%d: %.0f rec/s, %.0f txn/s\n",ckpt,sync,batch,subs,pagesize,recs/el,txns/el);
  return 0;}
