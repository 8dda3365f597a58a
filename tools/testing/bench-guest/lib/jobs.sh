# shellcheck shell=sh
# vhost-blk bench-guest: the fio jobs, one definition for the guest
# (guest/run.sh, busybox sh) and for the native runs in the outer VM
# (outer/bench-guest.sh, bash).
#   fio_job NAME DEV RUNTIME RAMP   prints the job file of NAME on DEV
# Jobs: qd1 (4k randread, iodepth 1, 1 job), rr32 / rw32 (4k randread /
# randwrite, iodepth 32 x 2 jobs), seq64k (64k sequential read, iodepth 8
# x 2 jobs, each on its own half of the disk).  2-job runs have one job
# pinned to each CPU.  libaio, direct, time based, group reporting,
# latency percentiles of the total latency (submission to completion).
BENCH_ALL_JOBS="qd1 rr32 rw32 seq64k"
fio_job() { # NAME DEV RUNTIME RAMP
	cat <<FIO
[global]
filename=$2
ioengine=libaio
direct=1
time_based=1
runtime=$3
ramp_time=$4
randrepeat=0
norandommap=1
group_reporting=1
lat_percentiles=1
percentile_list=50:99
FIO
	case "$1" in
	qd1)    printf '%s\n' "[qd1]" rw=randread bs=4k iodepth=1 numjobs=1 ;;
	rr32)   printf '%s\n' "[rr32]" rw=randread bs=4k iodepth=32 numjobs=2 cpus_allowed=0-1 cpus_allowed_policy=split ;;
	rw32)   printf '%s\n' "[rw32]" rw=randwrite bs=4k iodepth=32 numjobs=2 cpus_allowed=0-1 cpus_allowed_policy=split ;;
	seq64k) printf '%s\n' "[seq64k]" rw=read bs=64k iodepth=8 numjobs=2 cpus_allowed=0-1 cpus_allowed_policy=split \
			size=50% offset_increment=50% ;;
	*) echo "fio_job: unknown job $1" >&2; return 1 ;;
	esac
}
