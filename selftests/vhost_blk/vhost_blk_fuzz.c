// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_fuzz - random and adversarial guests and VMMs against
 * /dev/vhost-blk (the engine and its oracle are described in fuzz.c).
 *
 * Without arguments it is a kselftest binary (run.sh): TAP with one
 * bounded run ("random", VBLK_FUZZ_SECONDS, default 45 s, seed VBLK_SEED
 * or a fresh one) plus one test case per line of fuzz-seeds.txt (next to
 * the binary): every seed that ever found a bug, replayed for the number
 * of rounds it needed.  Each case runs in a child process; a child that
 * hangs past its deadline is killed and the case fails.  After each case
 * the module's counters must be back at 0 with no vblk thread left.  A
 * case whose setup fails (the module does not load, no null_blk) fails:
 * nothing it needs can be missing from the test VM.
 *
 * With arguments it is a command-line fuzzer:
 *   vhost_blk_fuzz [--seconds N] [--iterations N] [--seed S] [--queues N]
 *                  [--hang-ms MS] [--verbose]
 * It prints the seed first, then iterations (rounds), the time and the
 * rate.  Exit status 0 = pass, 1 = failure found, 2 = setup problem,
 * 3 = hang (watchdog).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "backend.h"
#include "driver.h"
#include "fuzz.h"

static uint64_t fresh_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &s, sizeof(s)) != sizeof(s))
			s = 0;
		close(fd);
	}
	if (!s)
		s = (uint64_t)getpid() * 2654435761ULL ^ (uint64_t)now_ms();
	return s;
}

static void print_stats(FILE *f, const struct fuzz_opts *o,
			const struct fuzz_stats *st, int rc)
{
	double rate = st->seconds > 0 ? st->rounds / st->seconds : 0;

	fprintf(f, "# seed 0x%llx: %lu iterations in %.1f s (%.2f iterations/s), %lu requests, %lu completions checked, %lu ioctls, %lu vq errors, %lu verified round trips, %lu reopens, %lu quiescence checks: %s\n",
		(unsigned long long)o->seed, st->rounds, st->seconds, rate,
		st->requests, st->completions, st->ioctls, st->vq_errs,
		st->verifies, st->reopens, st->quiesce_checks,
		rc == 0 ? "pass" : rc == 1 ? "FAIL" : rc == 3 ? "HANG" : "setup error");
	fflush(f);
}

/* ---------------------------------------------------------------- TAP mode */

struct tcase {
	char name[64];
	struct fuzz_opts o;
};

static int run_case(const struct tcase *tc)
{
	long deadline;
	pid_t pid;
	int st = 0, rc;
	char why[512];

	fprintf(stdout, "# %s: seed 0x%llx, %s %lu\n", tc->name,
		(unsigned long long)tc->o.seed,
		tc->o.iterations ? "iterations" : "seconds",
		tc->o.iterations ? tc->o.iterations : (unsigned long)tc->o.seconds);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct fuzz_stats s;
		int r = fuzz_run(&tc->o, &s);

		print_stats(stdout, &tc->o, &s, r);
		_exit(r);
	}
	/* run time + watchdog + settle/quiescence slack */
	deadline = now_ms() + (tc->o.seconds ? tc->o.seconds : 120) * 1000L +
		   (long)tc->o.hang_ms + 60000;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (now_ms() > deadline) {
			fprintf(stdout, "# %s: child did not finish in time: killed\n", tc->name);
			kill(pid, SIGKILL);
			sleep_ms(2000);
			waitpid(pid, &st, WNOHANG);
			return 1;
		}
		sleep_ms(100);
	}
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (rc != 0 && rc != 2) {
		fprintf(stdout, "# %s: fuzzer exit status %d; replay with: vhost_blk_fuzz --seed 0x%llx --iterations N\n",
			tc->name, rc, (unsigned long long)tc->o.seed);
		return 1;
	}
	if (rc == 2)
		return 2;
	if (wait_quiescent(20000, why, sizeof(why))) {
		fprintf(stdout, "# %s: module not quiescent after the run: %s\n", tc->name, why);
		return 1;
	}
	return 0;
}

static unsigned int load_seeds(struct tcase *tc, unsigned int max,
			       const struct fuzz_opts *def)
{
	char path[4096], line[256];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	unsigned int cnt = 0;
	FILE *f;

	if (n <= 0)
		return 0;
	path[n] = 0;
	if (strrchr(path, '/'))
		strcpy(strrchr(path, '/') + 1, "fuzz-seeds.txt");
	f = fopen(path, "r");
	if (!f) {
		fprintf(stdout, "# no %s: no regression seeds\n", path);
		return 0;
	}
	while (cnt < max && fgets(line, sizeof(line), f)) {
		char name[48], seedtok[32];
		unsigned long iters;
		unsigned int q = 0;
		int k;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		/* %lli would clamp seeds >= 2^63: parse them unsigned. */
		k = sscanf(line, "%47s %31s %lu %u", name, seedtok, &iters, &q);
		if (k < 3) {
			fprintf(stderr, "fuzz-seeds.txt: ignoring malformed line: %s", line);
			continue;
		}
		snprintf(tc[cnt].name, sizeof(tc[cnt].name), "seed_%s", name);
		tc[cnt].o = *def;
		tc[cnt].o.seed = strtoull(seedtok, NULL, 0);
		tc[cnt].o.iterations = iters;
		tc[cnt].o.seconds = 0;
		if (k == 4 && q)
			tc[cnt].o.max_queues = q;
		cnt++;
	}
	fclose(f);
	return cnt;
}

static int tap_main(void)
{
	static struct tcase tc[65];
	struct fuzz_opts def = { .max_queues = 4, .hang_ms = 90000 };
	const char *s;
	unsigned int n = 1, i, pass = 0, fail = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(tc[0].name, sizeof(tc[0].name), "random");
	tc[0].o = def;
	s = getenv("VBLK_SEED");
	tc[0].o.seed = s && *s ? strtoull(s, NULL, 0) : fresh_seed();
	s = getenv("VBLK_FUZZ_SECONDS");
	tc[0].o.seconds = s && *s ? (unsigned int)strtoul(s, NULL, 0) : 45;
	n += load_seeds(tc + 1, 64, &def);

	printf("TAP version 13\n1..%u\n", n);
	for (i = 0; i < n; i++) {
		int r = run_case(&tc[i]);

		if (r == 0) {
			printf("ok %u %s\n", i + 1, tc[i].name);
			pass++;
		} else if (r == 2) {
			/*
			 * What setup needs is guaranteed in the test VM (the
			 * module loads, null_blk is there): failing it is a
			 * failure, not a SKIP.
			 */
			printf("# %s: setup failed (module not loadable, or no null_blk backend)\n",
			       tc[i].name);
			printf("not ok %u %s\n", i + 1, tc[i].name);
			fail++;
		} else {
			printf("not ok %u %s\n", i + 1, tc[i].name);
			fail++;
		}
	}
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:0 error:0\n",
	       pass, fail);
	return fail ? 1 : 0;
}

/* ---------------------------------------------------------------- CLI mode */

static void usage(FILE *f)
{
	fprintf(f, "usage: vhost_blk_fuzz [--seconds N] [--iterations N] [--seed S]\n"
		   "                      [--queues N] [--hang-ms MS] [--verbose]\n"
		   "       vhost_blk_fuzz            (kselftest TAP mode)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seconds", required_argument, NULL, 't' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "queues", required_argument, NULL, 'q' },
		{ "hang-ms", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fuzz_opts o = { .max_queues = 4, .hang_ms = 90000 };
	struct fuzz_stats st;
	bool have_seed = false;
	int c, rc;

	if (argc == 1)
		return tap_main();
	while ((c = getopt_long(argc, argv, "t:n:s:q:H:vh", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			o.seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			o.iterations = strtoul(optarg, NULL, 0);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 'q':
			o.max_queues = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'H':
			o.hang_ms = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!have_seed)
		o.seed = fresh_seed();
	if (!o.seconds && !o.iterations)
		o.seconds = 60;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("seed 0x%llx\n", (unsigned long long)o.seed);
	rc = fuzz_run(&o, &st);
	print_stats(stdout, &o, &st, rc);
	printf("iterations %lu seconds %.1f rate %.2f/s seed 0x%llx result %s\n",
	       st.rounds, st.seconds, st.seconds > 0 ? st.rounds / st.seconds : 0,
	       (unsigned long long)o.seed, rc ? "FAIL" : "PASS");
	return rc;
}
