/*
 * test_schema: the feature schema parser (every error typed with its
 * line), the canonical text, the value encoders, reading a header CSV
 * through a schema, and the samples CSV v2 (side values) round trip.
 * Files go to a private temporary directory. Single-threaded.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "deviced/dccl_device.h"
#include "scripts/tools/movielens.h"
#include "scripts/tools/synth.h"
#include "shared/data/dataset.h"
#include "shared/data/schema.h"

static char tmpdir[256];

static const char *
tmpfile_with(const char *name, const char *text)
{
	static char p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	return p;
}

static const char *good =
    "# a comment\n"
    "\n"
    "dccl-schema 1\n"
    "field uid user vocab=100\n"
    "field iid item\n"
    "field time ts\n"
    "field stars rating threshold=3.5\n"
    "field tags bag values=a|b|c\n"
    "field age num side=user bounds=18,25,35.5\n"
    "field gender cat side=user values=F|M\r\n"
    "field city hash side=user buckets=50\n"
    "field pos cat side=context vocab=10\n"
    "field junk skip\n";

static void
test_parse_good(void **state)
{
	struct schema s, t;
	char err[256];
	char *txt, *txt2;
	uint32_t v;

	(void)state;
	schema_init(&s);
	schema_init(&t);
	assert_int_equal(schema_parse(&s, good, strlen(good), "g", err,
	    sizeof(err)), 0);
	assert_int_equal(s.n, 10);
	assert_int_equal(s.n_side, 4);
	assert_int_equal(s.user, 0);
	assert_int_equal(s.item, 1);
	assert_int_equal(s.ts, 2);
	assert_int_equal(s.label, -1);
	assert_int_equal(s.rating, 3);
	assert_int_equal(s.bag, 4);
	assert_int_equal(s.f[0].card, 100);
	assert_true(s.f[3].threshold == 3.5);
	assert_int_equal(s.f[4].card, 3);
	assert_int_equal(s.f[4].side, SCHEMA_S_ITEM);	/* bag default */
	assert_int_equal(s.f[5].slot, 0);
	assert_int_equal(s.f[5].card, 4);		/* 3 bounds */
	assert_int_equal(s.f[6].slot, 1);
	assert_int_equal(s.f[6].card, 2);
	assert_int_equal(s.f[7].slot, 2);
	assert_int_equal(s.f[7].card, 50);
	assert_int_equal(s.f[8].slot, 3);
	assert_int_equal(s.f[8].side, SCHEMA_S_CONTEXT);
	assert_int_equal(s.side_field[3], 8);

	/* encoders */
	assert_int_equal(schema_encode(&s.f[5], "17", 2, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(schema_encode(&s.f[5], "18", 2, &v), 0);
	assert_int_equal(v, 1);		/* bound itself: upper bucket */
	assert_int_equal(schema_encode(&s.f[5], "35.4", 4, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(schema_encode(&s.f[5], "99", 2, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(schema_encode(&s.f[5], "x", 1, &v), -1);
	assert_int_equal(schema_encode(&s.f[5], "", 0, &v), 0);
	assert_int_equal(v, 4);		/* empty: unknown = card */
	assert_int_equal(schema_encode(&s.f[6], "M", 1, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(schema_encode(&s.f[6], "X", 1, &v), -1);
	assert_int_equal(schema_encode(&s.f[7], "Paris", 5, &v), 0);
	assert_true(v < 50);
	{
		uint32_t v2;

		assert_int_equal(schema_encode(&s.f[7], "Paris", 5, &v2), 0);
		assert_int_equal(v, v2);	/* stable */
	}
	assert_int_equal(schema_encode(&s.f[8], "9", 1, &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(schema_encode(&s.f[8], "10", 2, &v), -1);
	assert_int_equal(schema_encode_bag(&s.f[4], "c|a", 3, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(schema_encode_bag(&s.f[4], "a|d", 3, &v), -1);
	assert_int_equal(schema_encode_bag(&s.f[4], "a|", 2, &v), -1);

	/* canonical text: parses back to itself */
	txt = schema_format(&s);
	assert_int_equal(schema_parse(&t, txt, strlen(txt), "c", err,
	    sizeof(err)), 0);
	txt2 = schema_format(&t);
	assert_string_equal(txt, txt2);
	assert_non_null(strstr(txt, "field age num side=user "
	    "bounds=18,25,35.5\n"));
	free(txt);
	free(txt2);
	schema_fini(&s);
	schema_fini(&t);
}

/* Each bad schema fails with its own message at its line. */
static void
test_parse_bad(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "", "x: empty schema" },
		{ "field u user\n", "x:1: expected 'dccl-schema 1' first" },
		{ "dccl-schema 2\n", "x:1: unsupported schema version" },
		{ "dccl-schema 1\nfield u user\nfield u item\n",
		    "x:3: duplicate field name" },
		{ "dccl-schema 1\nfield u user\nfield i item\nfield l label\n"
		  "fld x cat\n", "x:5: expected 'field NAME KIND" },
		{ "dccl-schema 1\nfield u usr\n", "x:2: unknown kind" },
		{ "dccl-schema 1\nfield u/x user\n", "x:2: bad field name" },
		{ "dccl-schema 1\nfield c cat vocab=3\n", "x:2: cat needs side=" },
		{ "dccl-schema 1\nfield c cat side=user\n",
		    "x:2: want exactly one of vocab= and values=" },
		{ "dccl-schema 1\nfield c cat side=user vocab=3 values=a\n",
		    "x:2: want exactly one" },
		{ "dccl-schema 1\nfield c cat side=up vocab=3\n",
		    "x:2: side must be user, item or context" },
		{ "dccl-schema 1\nfield c cat side=user vocab=0\n",
		    "x:2: bad count" },
		{ "dccl-schema 1\nfield c cat side=user vocab=1048577\n",
		    "x:2: bad count" },
		{ "dccl-schema 1\nfield c cat side=user vocab=3 vocab=4\n",
		    "x:2: key given twice" },
		{ "dccl-schema 1\nfield c cat side=user buckets=3\n",
		    "x:2: key not valid for this kind" },
		{ "dccl-schema 1\nfield c cat side=user colour=3\n",
		    "x:2: unknown key" },
		{ "dccl-schema 1\nfield c cat side=user vocab\n",
		    "x:2: expected key=value" },
		{ "dccl-schema 1\nfield c cat side=user values=a|a\n",
		    "x:2: duplicate value name" },
		{ "dccl-schema 1\nfield c cat side=user values=a||b\n",
		    "x:2: bad value name" },
		{ "dccl-schema 1\nfield n num side=user bounds=1,1\n",
		    "x:2: bounds must increase strictly" },
		{ "dccl-schema 1\nfield n num side=user bounds=1,x\n",
		    "x:2: bad bound" },
		{ "dccl-schema 1\nfield n num side=user bounds=1,inf\n",
		    "x:2: bad bound" },
		{ "dccl-schema 1\nfield n num side=user\n",
		    "x:2: num needs side= and bounds=" },
		{ "dccl-schema 1\nfield h hash side=item\n",
		    "x:2: hash needs side= and buckets=" },
		{ "dccl-schema 1\nfield b bag vocab=33\n",
		    "x:2: a bag has at most 32 values" },
		{ "dccl-schema 1\nfield u user\nfield v user\n",
		    "x:3: a second field of this kind" },
		{ "dccl-schema 1\nfield u ts side=user\n",
		    "x:2: key not valid for this kind" },
		{ "dccl-schema 1\nfield r rating threshold=abc\n",
		    "x:2: bad threshold" },
		{ "dccl-schema 1\nfield i item\nfield l label\n",
		    "x: no user field" },
		{ "dccl-schema 1\nfield u user\nfield l label\n",
		    "x: no item field" },
		{ "dccl-schema 1\nfield u user\nfield i item\n",
		    "x: no label or rating field" },
		{ "dccl-schema 1\nfield u user\nfield i item\nfield l label\n"
		  "field c0 cat side=user vocab=2\nfield c1 cat side=user vocab=2\n"
		  "field c2 cat side=user vocab=2\nfield c3 cat side=user vocab=2\n"
		  "field c4 cat side=user vocab=2\nfield c5 cat side=user vocab=2\n"
		  "field c6 cat side=user vocab=2\nfield c7 cat side=user vocab=2\n"
		  "field c8 cat side=user vocab=2\n",
		    "x:13: more than 8 side fields" },
	};
	struct schema s;
	char err[256];

	(void)state;
	schema_init(&s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(schema_parse(&s, cases[i].text,
		    strlen(cases[i].text), "x", err, sizeof(err)), -EINVAL);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("case %zu: got '%s', want '%s...'", i, err,
			    cases[i].want);
		assert_int_equal(s.n, 0);
	}
	/* A NUL byte inside a line is an error, not a truncation. */
	assert_int_equal(schema_parse(&s, "dccl-schema 1\nfield u\0 user\n",
	    27, "x", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "x:2: NUL byte");
	assert_int_equal(schema_load(&s, "/nonexistent/schema", err,
	    sizeof(err)), -ENOENT);
	schema_fini(&s);
}

static void
test_read_csv(void **state)
{
	struct schema s;
	struct dataset ds;
	struct dataset_err de;
	struct dataset_opts o;
	char err[256];
	const char *sp, *cp;

	(void)state;
	schema_init(&s);
	sp = tmpfile_with("s.txt", good);
	assert_int_equal(schema_load(&s, sp, err, sizeof(err)), 0);
	dataset_opts_default(&o);
	dataset_init(&ds);
	/* columns in any order; quoted values; an empty side value */
	cp = tmpfile_with("a.csv",
	    "junk,iid,uid,time,stars,tags,age,gender,city,pos\n"
	    "x,5,1,100,4,a|c,30,M,\"Paris, TX\",3\n"
	    "y,6,1,200,3,,17,F,Rome,\n"
	    "z,5,2,150,5,b,,M,Rome,0\n");
	assert_int_equal(schema_read_csv(&ds, cp, &s, &o, &de), 0);
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.n_side, 4);
	assert_int_equal(ds.side_card[0], 4);
	assert_int_equal(ds.side_card[3], 10);
	assert_int_equal(ds.n_users, 100);
	assert_int_equal(ds.n_genres, 3);
	/* canonical: user 1 (ts 100, 200), then user 2 */
	assert_int_equal(ds.s[0].user, 1);
	assert_int_equal(ds.s[0].item, 5);
	assert_true(ds.s[0].label == 1.0f);	/* 4 >= 3.5 */
	assert_int_equal(ds.s[0].genres, 5);
	assert_int_equal(ds.s[0].side[0], 2);	/* 30: [25, 35.5) */
	assert_int_equal(ds.s[0].side[1], 1);	/* M */
	assert_int_equal(ds.s[0].side[3], 3);
	assert_int_equal(ds.s[1].item, 6);
	assert_true(ds.s[1].label == 0.0f);
	assert_int_equal(ds.s[1].side[0], 0);
	assert_int_equal(ds.s[1].side[3], 10);	/* empty: unknown */
	assert_int_equal(ds.s[1].hist_n, 1);	/* item 5 was positive */
	assert_int_equal(ds.s[2].user, 2);
	assert_int_equal(ds.s[2].side[0], 4);	/* empty num: unknown */
	assert_int_equal(ds.s[2].side[2], ds.s[1].side[2]);	/* Rome */

	/* samples CSV v2 keeps the side values; v1 readers see v2 lines */
	{
		struct dataset b;
		char p[512];

		snprintf(p, sizeof(p), "%s/v2.csv", tmpdir);
		assert_int_equal(dataset_write_csv(p, &ds, NULL, 0), 0);
		dataset_init(&b);
		assert_int_equal(dataset_read_csv(&b, p, &o, &de), 0);
		assert_int_equal(b.n, 3);
		assert_int_equal(b.n_side, 4);
		assert_memory_equal(b.side_card, ds.side_card,
		    sizeof(b.side_card));
		for (size_t i = 0; i < 3; i++)
			assert_memory_equal(b.s[i].side, ds.s[i].side,
			    sizeof(b.s[i].side));
		/* a second file with other side fields is refused */
		cp = tmpfile_with("v2b.csv", "# dccl-samples v2 n_users=3 "
		    "n_items=7 n_genres=3 n_side=1 side_card=4\n"
		    "user,item,ts,rating,label,genres,hist,side\n"
		    "0,1,5,0,1,0,,2\n");
		assert_int_equal(dataset_read_csv(&b, cp, &o, &de), -EINVAL);
		assert_non_null(strstr(de.msg, "v2b.csv:2: side fields differ"));
		dataset_fini(&b);
		dataset_init(&b);
		/* value above its card */
		cp = tmpfile_with("v2c.csv", "# dccl-samples v2 n_users=3 "
		    "n_items=7 n_genres=3 n_side=1 side_card=4\n"
		    "user,item,ts,rating,label,genres,hist,side\n"
		    "0,1,5,0,1,0,,5\n");
		assert_int_equal(dataset_read_csv(&b, cp, &o, &de), -EINVAL);
		assert_non_null(strstr(de.msg, "v2c.csv:3: bad side values"));
		/* a side column without the v2 line */
		cp = tmpfile_with("v2d.csv",
		    "user,item,ts,rating,label,genres,hist,side\n");
		assert_int_equal(dataset_read_csv(&b, cp, &o, &de), -EINVAL);
		assert_non_null(strstr(de.msg, "v2d.csv:1: a side column"));
		dataset_fini(&b);
	}
	dataset_fini(&ds);

	/* typed errors with file:line */
	{
		static const struct {
			const char *csv, *want;
		} bad[] = {
			{ "uid,iid,time,stars,tags,age,gender,city,pos,color\n",
			    ":1: unknown column 'color'" },
			{ "uid,iid,time,stars,tags,age,gender,city\n",
			    ":1: schema field 'pos' has no column" },
			{ "uid,uid,iid,time,stars,tags,age,gender,city,pos\n",
			    ":1: column 'uid' given twice" },
			{ "uid,iid,time,stars,tags,age,gender,city,pos\n"
			  "1,2,3,4,a,5,M,x,1\n100,2,3,4,a,5,M,x,1\n",
			    ":3: column 'uid': id 100 out of range (vocab 100)" },
			{ "uid,iid,time,stars,tags,age,gender,city,pos\n"
			  "1,2,3,4,a,5,Q,x,1\n",
			    ":2: column 'gender': bad value" },
			{ "uid,iid,time,stars,tags,age,gender,city,pos\n"
			  "1,2,3,4,a,5,M,x\n",
			    ":2: expected 9 fields, got 8" },
			{ "uid,iid,time,stars,tags,age,gender,city,pos\n"
			  "1,2,3,4,a,old,M,x,1\n",
			    ":2: column 'age': bad value" },
			{ "uid,iid,time,stars,tags,age,gender,city,pos\n"
			  "1,2,3,-4,a,5,M,x,1\n",
			    ":2: column 'stars': bad rating" },
			{ "uid,iid,time,stars,tags,age,gender,city,pos\n"
			  "1,2,3,4,a,5,M,\"x,1\n",
			    ":2: bad quoting" },
			{ "", ": empty file" },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			dataset_init(&ds);
			cp = tmpfile_with("bad.csv", bad[i].csv);
			assert_int_equal(schema_read_csv(&ds, cp, &s, &o, &de),
			    -EINVAL);
			if (strstr(de.msg, bad[i].want) == NULL)
				fail_msg("case %zu: got '%s', want '%s'", i,
				    de.msg, bad[i].want);
			assert_int_equal(ds.n, 0);
		}
		/* skip_bad: bad rows counted, good ones kept */
		dataset_init(&ds);
		o.skip_bad = 1;
		cp = tmpfile_with("skip.csv",
		    "uid,iid,time,stars,tags,age,gender,city,pos\n"
		    "1,2,3,4,a,5,M,x,1\n1,2,3,4,a,5,Q,x,1\n2,2,3,4,a,5,F,x,1\n");
		assert_int_equal(schema_read_csv(&ds, cp, &s, &o, &de), 0);
		assert_int_equal(ds.n, 2);
		assert_int_equal(de.n_bad, 1);
		dataset_fini(&ds);
	}
	schema_fini(&s);
}

static const char *
fixture(const char *name)
{
	static char p[1024];
	const char *d = getenv("DCCL_FIXTURES");

	snprintf(p, sizeof(p), "%s/%s", d ? d : "tests/fixtures", name);
	return p;
}

/*
 * The MovieLens side features on the fixtures: raw user 3 is 24, M,
 * technician, zip 85711 in u.user (100K) and M, 25, 17, 85711 in
 * users.dat (1M); raw item 2 is from 1995; raw user 20 is not in
 * users.dat (unknown).
 */
static void
test_movielens_side(void **state)
{
	static const struct {
		const char *dir;
		uint32_t n_side, age, occ;
	} cases[] = {
		{ "ml-100k", 5, 1, 19 },	/* 24: [18, 25); technician */
		{ "ml-1m", 5, 2, 17 },		/* 25: [25, 35); code 17 */
		{ "ml-latest", 1, 0, 0 },	/* no demographics */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct dataset ds;
		struct dataset_meta m;
		struct dataset_err e;
		struct schema sc;
		char err[256];
		uint32_t ys = cases[c].n_side - 1;
		int seen_u3 = 0, seen_u20 = 0;

		dataset_init(&ds);
		dataset_meta_init(&m);
		assert_int_equal(dataset_load_movielens(&ds, &m,
		    fixture(cases[c].dir), NULL, &e), 0);
		assert_int_equal(ds.n_side, cases[c].n_side);
		assert_int_equal(ds.side_card[ys], 11);	/* year buckets */
		assert_non_null(m.schema);
		schema_init(&sc);
		assert_int_equal(schema_parse(&sc, m.schema, strlen(m.schema),
		    "ml", err, sizeof(err)), 0);
		assert_int_equal(sc.n_side, cases[c].n_side);
		assert_int_equal(sc.f[sc.side_field[ys]].side, SCHEMA_S_ITEM);
		for (size_t i = 0; i < ds.n; i++) {
			const struct sample *s = &ds.s[i];

			if (m.item_raw[s->item] == 2)
				assert_int_equal(s->side[ys], 6); /* 1995 */
			if (cases[c].n_side == 1)
				continue;
			if (m.user_raw[s->user] == 3) {
				seen_u3 = 1;
				assert_int_equal(s->side[0], cases[c].age);
				assert_int_equal(s->side[1], 1);	/* M */
				assert_int_equal(s->side[2], cases[c].occ);
				assert_int_equal(s->side[3], 8);	/* 8xxxx */
			}
			if (m.user_raw[s->user] == 20 && c == 1) {
				seen_u20 = 1;
				for (int k = 0; k < 4; k++)
					assert_int_equal(s->side[k],
					    ds.side_card[k]);
			}
		}
		if (cases[c].n_side > 1)
			assert_true(seen_u3 && (seen_u20 || c != 1));
		/* item-side table for sampled negatives */
		assert_non_null(m.item_side);
		assert_int_equal(m.side_item_mask, 1u << ys);
		schema_fini(&sc);
		dataset_fini(&ds);
		dataset_meta_fini(&m);
	}
}

/* synth: side fields only when asked; the other data unchanged by them. */
static void
test_synth_side(void **state)
{
	struct synth_opts o;
	struct dataset a, b;
	struct dataset_meta ma, mb;
	struct synth_truth *ta, *tb;
	size_t same = 0;

	(void)state;
	synth_opts_default(&o);
	o.n_users = 50;
	o.n_items = 400;
	assert_int_equal(dataset_synth(&a, &ma, &ta, &o), 0);
	o.side = 1;
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), 0);
	assert_int_equal(a.n_side, 0);
	assert_int_equal(b.n_side, 2);
	assert_int_equal(b.side_card[0], o.n_clusters);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(a.s[i].item, b.s[i].item);
		assert_true(a.s[i].label == b.s[i].label);
		assert_int_equal(a.s[i].side[0], 0);
		assert_true(b.s[i].side[0] < o.n_clusters);
		assert_true(b.s[i].side[1] < o.n_clusters);
		assert_int_equal(b.s[i].side[1],
		    mb.item_side[b.s[i].item * SAMPLE_SIDE_MAX + 1]);
	}
	/* the segment is the taste cluster for ~70% + 30%/K of users */
	for (uint32_t u = 0; u < o.n_users; u++)
		for (size_t i = 0; i < b.n; i++)
			if (b.s[i].user == u) {
				same += b.s[i].side[0] == tb[u].cluster;
				break;
			}
	assert_true(same >= 25 && same <= 49);
	assert_non_null(strstr(mb.schema, "field segment cat side=user"));
	assert_null(strstr(ma.schema, "segment"));
	free(ta);
	free(tb);
	dataset_fini(&a);
	dataset_fini(&b);
	dataset_meta_fini(&ma);
	dataset_meta_fini(&mb);
}

/* ids=hash: string user and item ids hashed into buckets, collisions counted. */
static void
test_string_ids(void **state)
{
	struct schema s;
	struct dataset ds;
	struct dataset_err de;
	struct dataset_opts o;
	struct schema_ids ids;
	char err[256], *canon;
	const char *cp;
	uint32_t v;
	const char *sch =
	    "dccl-schema 1\n"
	    "field u user vocab=1 ids=hash\n"
	    "field i item vocab=1000 ids=hash\n"
	    "field h hist\n"
	    "field y label\n";

	(void)state;
	schema_init(&s);
	assert_int_equal(schema_parse(&s, sch, strlen(sch), "s", err,
	    sizeof(err)), 0);
	canon = schema_format(&s);
	assert_non_null(strstr(canon, "field u user vocab=1 ids=hash\n"));
	free(canon);
	assert_int_equal(schema_encode_id(&s.f[s.item], "SKU-1", 5, &v), 0);
	assert_int_equal(v, schema_hash64("SKU-1", 5) % 1000);
	/* an app's hash (the device library) is the import's */
	assert_int_equal(dccl_device_hash_id("SKU-1", 5, 1000), v);
	/* FNV-1a 64 of "a": a published test vector */
	assert_true(schema_hash64("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_int_equal(schema_encode_id(&s.f[s.item], "", 0, &v), -1);
	dataset_opts_default(&o);
	dataset_init(&ds);
	cp = tmpfile_with("ids.csv",
	    "u,i,h,y\n"
	    "alice,SKU-1,,1\n"
	    "bob,SKU-2,SKU-1|SKU-3,0\n");
	assert_int_equal(schema_read_csv_ids(&ds, cp, &s, &o, &de, &ids), 0);
	assert_int_equal(ds.n, 2);
	assert_int_equal(ds.n_items, 1000);
	assert_int_equal(ds.s[1].hist_n, 2);
	assert_int_equal(ds.hist[ds.s[1].hist_off], schema_hash64("SKU-1", 5) %
	    1000);
	/* two users in one bucket; SKU-1..3 in three (FNV-1a mod 1000) */
	assert_int_equal(ids.user_strings, 2);
	assert_int_equal(ids.user_buckets, 1);
	assert_int_equal(ids.item_strings, 3);
	assert_int_equal(ids.item_buckets, 3);
	dataset_fini(&ds);
	dataset_init(&ds);
	cp = tmpfile_with("ids-bad.csv", "u,i,h,y\nalice,SKU-1,,1\n"
	    "bob,,,0\n");
	assert_int_equal(schema_read_csv(&ds, cp, &s, &o, &de), -EINVAL);
	assert_non_null(strstr(de.msg, "ids-bad.csv:3: column 'i': empty id"));
	cp = tmpfile_with("ids-bad2.csv", "u,i,h,y\nalice,SKU-1,SKU-2||,1\n");
	assert_int_equal(schema_read_csv(&ds, cp, &s, &o, &de), -EINVAL);
	assert_non_null(strstr(de.msg, "ids-bad2.csv:2: column 'h': bad "
	    "history item"));
	/* a skipped bad row's ids are not counted */
	o.skip_bad = 1;
	cp = tmpfile_with("ids-skip.csv", "u,i,h,y\nalice,SKU-1,,1\n"
	    "carol,SKU-7,,2\n");
	assert_int_equal(schema_read_csv_ids(&ds, cp, &s, &o, &de, &ids), 0);
	assert_int_equal(ds.n, 1);
	assert_int_equal(ids.user_strings, 1);
	assert_int_equal(ids.item_strings, 1);
	o.skip_bad = 0;
	dataset_fini(&ds);
	schema_fini(&s);
	/* ids=hash needs the bucket count; ids=int is the default */
	sch = "dccl-schema 1\nfield u user ids=hash\n";
	assert_int_equal(schema_parse(&s, sch, strlen(sch), "n", err,
	    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "n:2: ids=hash needs vocab="));
	sch = "dccl-schema 1\nfield u user ids=int\nfield i item\n"
	    "field y label\n";
	assert_int_equal(schema_parse(&s, sch, strlen(sch), "n", err,
	    sizeof(err)), 0);
	canon = schema_format(&s);
	assert_null(strstr(canon, "ids="));
	free(canon);
	assert_int_equal(schema_encode_id(&s.f[s.user], "7", 1, &v), 0);
	assert_int_equal(v, 7);
	schema_fini(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_read_csv),
		cmocka_unit_test(test_movielens_side),
		cmocka_unit_test(test_synth_side),
		cmocka_unit_test(test_string_ids),
	};
	const char *t = getenv("TMPDIR");
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_schema.XXXXXX",
	    t ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			rc = rc ? rc : 1;
	}
	return rc;
}
