"""The functions `pgstore query` may call: reviewed, pure built-ins and pgstore's reads."""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

# PostgreSQL built-ins that only compute a value from their arguments: comparison,
# arithmetic, text, date/time, JSON, arrays, aggregates and window functions. Nothing
# here reads a file, runs query text, waits, takes a lock, sends a notification or
# changes a setting. Anything not listed is refused, whatever it is called.
# (Words in a string, split: a list of 260 quoted names would be harder to review.)
FUNCTIONS = frozenset(
    """
    abs cbrt ceil ceiling degrees div exp factorial floor gcd lcm ln log log10 mod pi
    power pow radians round scale sign sqrt trunc width_bucket random
    acos asin atan atan2 cos cot sin tan acosd asind atand cosd sind tand
    greatest least coalesce nullif num_nonnulls num_nulls
    ascii bit_length btrim char_length character_length chr concat concat_ws format
    initcap left length lower lpad ltrim md5 normalize octet_length overlay position
    quote_ident quote_literal quote_nullable regexp_count regexp_instr regexp_like
    regexp_match regexp_matches regexp_replace regexp_split_to_array
    regexp_split_to_table regexp_substr repeat replace reverse right rpad rtrim
    split_part starts_with string_to_array string_to_table strpos substr substring
    to_hex translate trim upper encode decode sha224 sha256 sha384 sha512 to_char
    to_date to_number to_timestamp unistr
    age clock_timestamp date_bin date_part date_trunc extract isfinite justify_days
    justify_hours justify_interval make_date make_interval make_time make_timestamp
    make_timestamptz now statement_timestamp timeofday transaction_timestamp timezone
    to_json to_jsonb array_to_json row_to_json json_build_array jsonb_build_array
    json_build_object jsonb_build_object json_object jsonb_object json_array_elements
    json_array_elements_text jsonb_array_elements jsonb_array_elements_text
    json_array_length jsonb_array_length json_each json_each_text jsonb_each
    jsonb_each_text json_extract_path json_extract_path_text jsonb_extract_path
    jsonb_extract_path_text json_object_keys jsonb_object_keys json_typeof jsonb_typeof
    json_strip_nulls jsonb_strip_nulls jsonb_set jsonb_set_lax jsonb_insert
    jsonb_pretty jsonb_path_exists jsonb_path_match jsonb_path_query
    jsonb_path_query_array jsonb_path_query_first json_agg jsonb_agg json_object_agg
    jsonb_object_agg
    array_agg array_append array_cat array_dims array_fill array_length array_lower
    array_ndims array_position array_positions array_prepend array_remove
    array_replace array_to_string array_upper cardinality trim_array unnest
    avg bit_and bit_or bool_and bool_or count every max min string_agg sum stddev
    stddev_pop stddev_samp variance var_pop var_samp percentile_cont percentile_disc
    mode corr covar_pop covar_samp regr_slope regr_intercept regr_count regr_r2
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value
    last_value nth_value
    generate_series gen_random_uuid pg_typeof
    """.split()  # noqa: SIM905
)

# Schema-qualified calls: pgstore's and Message DB's read functions, and pg_catalog's
# spelling of the built-ins above.
QUALIFIED: dict[str, frozenset[str]] = {
    "pgstore": frozenset(
        """read_stream read_category read_all last_message stream_version category id
        cardinal_id is_category hash_64 global_position_horizon""".split()  # noqa: SIM905
    ),
    "message_store": frozenset(
        """get_stream_messages get_category_messages get_last_stream_message
        stream_version category id cardinal_id is_category hash_64
        message_store_version""".split()  # noqa: SIM905
    ),
    "pg_catalog": FUNCTIONS,
}

# Operators and special forms that sqlglot represents as functions.
_OPERATOR_PROBES = (
    "a @> b, a <@ b, a && b, a ? 'k', a ?| ARRAY['k'], a ?& ARRAY['k'], a -> 'k', a ->> 'k',"
    " a #> '{k}', a #>> '{k}', a ~ 'x', a ~* 'x', a !~ 'x', a ^ 2, |/ a, ARRAY[1], a[1],"
    ' CAST(a AS int), a::int, CASE WHEN a THEN 1 END, EXTRACT(epoch FROM a), a COLLATE "C",'
    " CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP, LOCALTIME, LOCALTIMESTAMP, CURRENT_USER,"
    " SESSION_USER, EXISTS (SELECT 1), INTERVAL '1 day', SUBSTRING(a FROM 1 FOR 2),"
    " TRIM(BOTH 'x' FROM a), POSITION('a' IN b), OVERLAY(a PLACING 'b' FROM 1),"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY a), count(*) FILTER (WHERE a),"
    " (a AND b) OR NOT c, a = b, a <> b, a < b, a <= b, a + b, a - b, a * b, a / b, a % b,"
    " -a, a || b, a IS NULL, a IS NOT NULL, a IN (1, 2), a NOT IN (1), a BETWEEN 1 AND 2,"
    " a LIKE 'x', a ILIKE 'x', a NOT LIKE 'x', a SIMILAR TO 'x', a IS DISTINCT FROM b,"
    " a IS NOT DISTINCT FROM b, a & b, a | b, a # b, ~a, a << 1, a >> 1, @ a,"
    " a AT TIME ZONE 'UTC', a = ANY (ARRAY[1]), a = ALL (ARRAY[1]), a IS TRUE, ROW(1, 2)"
)


@functools.cache
def function_classes() -> frozenset[type[exp.Func]]:
    """The sqlglot expression classes that the allowed built-ins and operators parse to.

    Derived by parsing each allowed name (with 0 to 4 arguments) and the operator
    probes, so that the check follows sqlglot's own mapping rather than a copy of it.
    A class is allowed only if an allowed spelling produces it; the SQL that runs is
    regenerated from the tree, so it calls that class's own PostgreSQL function.
    """
    found: set[type[exp.Func]] = set()
    # Parsed by sqlglot only, never run.
    probes = [
        f"SELECT {name}({', '.join('abcd'[:count])}) FROM t"  # noqa: S608
        for name in FUNCTIONS
        for count in range(5)
    ]
    probes.append(f"SELECT {_OPERATOR_PROBES} FROM t")  # noqa: S608
    for probe in probes:
        try:
            tree = sqlglot.parse_one(probe, read="postgres")
        except sqlglot.errors.SqlglotError:
            continue  # that arity does not parse: another one will
        found.update(
            type(node)
            for node in tree.walk()
            if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous)
        )
    return frozenset(found)
