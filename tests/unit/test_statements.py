"""Settlement statements in the partners' dialects: written and read back exactly, and any
malformed bytes refused as a StatementError that names the line and the problem."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import statements
from core.domain.calendar import SHANGHAI
from core.domain.statements import (
    KINDS,
    MAX_STATEMENT_BYTES,
    PROBLEMS,
    STATUSES,
    Statement,
    StatementError,
    StatementRow,
    Summary,
    parse_statement,
    write_statement,
)
from core.errors import ReferenceDataError
from core.i18n import Translator, load_messages
from core.statement_dialect_files import DIALECTS_DIR, dialect, dialect_for, load_dialect

WECHAT, ALIPAY = dialect("wechat_pay"), dialect("alipay")
DIALECTS = (WECHAT, ALIPAY)
REFERENCE_CHARS = "abcXYZ0189-_ ,\"'`#;:/订单号测试话费回收（）"


def random_rows(rng: random.Random, count: int | None = None) -> list[StatementRow]:
    start = dt.datetime(2000, 1, 1, tzinfo=SHANGHAI)
    rows = []
    for _ in range(rng.randint(0, 12) if count is None else count):
        at = start + dt.timedelta(seconds=rng.randrange(40 * 365 * 86400))
        amount = rng.choice([1, 99, 100, 10_000, rng.randint(1, 10**12)])
        rows.append(
            StatementRow(
                at=at if rng.random() < 0.5 else at.astimezone(dt.UTC),  # the same instant either way
                partner_ref="".join(rng.choices("0123456789", k=rng.randint(1, 32))),
                reference="".join(rng.choices(REFERENCE_CHARS, k=rng.randint(1, 32))),
                kind=rng.choice(KINDS),
                status=rng.choice(STATUSES),
                amount_fen=amount,
                fee_fen=rng.choice([0, amount // 100, rng.randint(0, 10**6)]),
            )
        )
    return rows


def sample_rows() -> list[StatementRow]:
    return [
        StatementRow(
            dt.datetime(2024, 5, 1, 9, 8, 7, tzinfo=SHANGHAI), "4200001", "R-1", "payout", "success", 30000, 180
        ),
        StatementRow(dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=SHANGHAI), "4200002", "R-2", "debit", "success", 5000),
        StatementRow(dt.datetime(2024, 5, 1, 23, 59, 59, tzinfo=SHANGHAI), "4200003", "R-3", "refund", "failed", 1, 0),
    ]


def text_of(d=WECHAT, rows=None, **kwargs) -> str:
    return write_statement(sample_rows() if rows is None else rows, d, **kwargs).decode(d.encoding)


def error_for(data: bytes | str, d=WECHAT, **kwargs) -> StatementError:
    raw = data.encode(d.encoding) if isinstance(data, str) else data
    with pytest.raises(StatementError) as caught:
        parse_statement(raw, d, **kwargs)
    return caught.value


# Round trips ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32))
@pytest.mark.parametrize("d", DIALECTS, ids=lambda d: d.name)
def test_each_dialect_round_trips_random_rows(d, seed):
    rows = random_rows(random.Random(seed))
    statement = parse_statement(write_statement(rows, d), d)
    assert statement.rows == tuple(rows)
    assert (
        statement.summary
        == statement.totals()
        == Summary(len(rows), sum(r.amount_fen for r in rows), sum(r.fee_fen for r in rows))
    )
    assert statement.dialect == d.name
    assert all(row.at.utcoffset() == dt.timedelta(hours=8) for row in statement.rows)


def test_rows_carry_their_line_but_it_is_not_part_of_equality():
    statement = parse_statement(write_statement(sample_rows(), ALIPAY), ALIPAY)
    assert [row.line for row in statement.rows] == [6, 7, 8]
    assert statement.rows == tuple(sample_rows()) and sample_rows()[0].line == 0


def test_both_dialects_parse_to_the_same_rows_from_different_bytes():
    rows = random_rows(random.Random(7), 20)
    wechat, alipay = write_statement(rows, WECHAT), write_statement(rows, ALIPAY)
    assert wechat != alipay
    assert parse_statement(wechat, WECHAT).rows == parse_statement(alipay, ALIPAY).rows == tuple(rows)
    assert parse_statement(wechat, WECHAT).summary == parse_statement(alipay, ALIPAY).summary


def test_a_reference_with_commas_and_quotes_round_trips():
    row = StatementRow(dt.datetime(2024, 5, 1, tzinfo=SHANGHAI), "1", 'a,b "c",`d', "payout", "success", 1)
    for d in DIALECTS:
        data = write_statement([row], d)
        assert '"' in data.decode(d.encoding).splitlines()[len(d.preamble) + 1]  # quoted by csv
        assert parse_statement(data, d).rows == (row,)


def test_the_alipay_file_is_gbk_with_comment_lines_before_and_after_the_detail():
    data = write_statement(sample_rows(), ALIPAY, account="2088102122524333")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    lines = data.decode("gbk").split("\r\n")
    assert lines[-1] == ""
    assert [line.startswith("#") for line in lines[:-1]] == [True] * 4 + [False] * 4 + [True] * 3
    assert lines[0] == "#支付宝业务明细查询" and lines[1] == "#账号：[2088102122524333]"
    assert lines[2] == "#起始日期：[2024-05-01 09:08:07]   终止日期：[2024-05-01 23:59:59]"
    assert lines[4] == "支付宝交易号,商户订单号,发生时间,业务类型,状态,金额（元）,服务费（元）"
    assert lines[5] == "4200001,R-1,2024-05-01 09:08:07,转账,成功,300.00,1.80"
    assert "业务明细列表结束" in lines[8]
    assert lines[9] == "#交易合计：3笔，金额：350.01元，服务费：1.80元"
    assert lines[10] == "#导出时间：[2024-05-01 23:59:59]"


def test_the_wechat_file_prefixes_every_value_with_a_backtick_and_ends_with_a_summary_block():
    data = write_statement(sample_rows(), WECHAT)
    lines = data.decode("utf-8").split("\r\n")
    assert lines[0] == "交易时间,平台订单号,商户订单号,交易类型,交易状态,金额,手续费"
    for line in lines[1:4]:
        assert all(value.startswith("`") for value in line.split(","))
    assert lines[1] == "`2024-05-01 09:08:07,`4200001,`R-1,`付款,`SUCCESS,`300.00,`1.80"
    assert lines[4:] == ["总交易单数,总金额,总手续费", "`3,`350.01,`1.80", ""]


def test_a_disagreeing_summary_is_returned_as_written():
    stated = Summary(count=4, amount_fen=999_999, fee_fen=0)
    for d in DIALECTS:
        statement = parse_statement(write_statement(sample_rows(), d, summary=stated), d)
        assert statement.summary == stated
        assert statement.summary != statement.totals() == Summary(3, 35001, 180)


def test_an_empty_statement_round_trips():
    for d in DIALECTS:
        assert parse_statement(write_statement([], d), d) == Statement(d.name, (), Summary(0, 0, 0))


def test_rows_the_dialect_cannot_carry_are_refused_when_written():
    with pytest.raises(ValueError, match="aware"):
        StatementRow(dt.datetime(2024, 5, 1), "1", "R", "payout", "success", 1)
    with pytest.raises(ValueError, match="positive"):
        StatementRow(dt.datetime(2024, 5, 1, tzinfo=SHANGHAI), "1", "R", "payout", "success", 0)
    with pytest.raises(ValueError, match="printable"):
        StatementRow(dt.datetime(2024, 5, 1, tzinfo=SHANGHAI), "1", "R\n2", "payout", "success", 1)
    emoji = StatementRow(dt.datetime(2024, 5, 1, tzinfo=SHANGHAI), "1", "R😀", "payout", "success", 1)
    assert parse_statement(write_statement([emoji], WECHAT), WECHAT).rows == (emoji,)
    with pytest.raises(ValueError, match="gbk"):
        write_statement([emoji], ALIPAY)


# Dialect files -------------------------------------------------------------------------------


def test_partners_map_to_dialects_with_a_default():
    assert dialect_for("alipay") is ALIPAY
    assert dialect_for("carrier") is WECHAT
    assert dialect_for("someone-new") is WECHAT
    for name in ("nope", "../partners", "partners", "", "WECHAT_PAY"):
        with pytest.raises(StatementError) as caught:
            dialect(name)
        error = caught.value
        assert error.key == "error.statement.unknown_dialect" and error.params["line"] == "0"


def test_adding_a_dialect_is_adding_a_file(tmp_path):
    spec = json.loads((DIALECTS_DIR / "alipay.json").read_text(encoding="utf-8"))
    spec |= {"encoding": "utf-8", "value_prefix": "\t", "time_format": "%Y/%m/%d %H:%M:%S", "line_end": "\n"}
    spec["columns"] = {"reference": "订单号", **{k: v for k, v in spec["columns"].items() if k != "reference"}}
    spec["summary"] = ["#合计", "#{fee}|{amount}|{count}"]
    (tmp_path / "newbank.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    newbank = load_dialect(tmp_path / "newbank.json")
    data = write_statement(sample_rows(), newbank)
    assert b"\t2024/05/01 09:08:07" in data and b"#1.80|350.01|3\n" in data
    assert parse_statement(data, newbank).rows == tuple(sample_rows())


def test_a_wrong_dialect_file_is_refused_naming_its_fields(tmp_path):
    spec = json.loads((DIALECTS_DIR / "wechat_pay.json").read_text(encoding="utf-8"))
    spec |= {"encoding": "klingon", "kinds": {"payout": "付款"}, "summary": ["`{count},`{amount}"], "colour": 1}
    spec["trailer"] = ["#end"]
    (tmp_path / "broken.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ReferenceDataError) as caught:
        load_dialect(tmp_path / "broken.json")
    problems = caught.value.params["problems"]
    for entry in ("colour", "encoding", "kinds", "summary", "comment_prefix"):
        assert f"{entry}:" in problems
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ReferenceDataError):
        load_dialect(tmp_path / "broken.json")


# Malformed input -----------------------------------------------------------------------------


def assert_well_formed(error: StatementError, data: bytes) -> None:
    assert error.key == f"error.statement.{error.params['problem']}"
    assert error.params["problem"] in PROBLEMS
    line = error.params["line"]
    assert line.isdigit() and 0 <= int(line) <= data.count(b"\n") + 1
    for language in ("zh-CN", "en"):
        assert error.key in load_messages(language)
    assert str(error) == Translator("en")(error.key, **error.params)  # the message is the catalog's


def mutate(rng: random.Random, d, kind: str) -> tuple[bytes, int]:
    """One malformed statement of `kind` and the max_bytes to read it with."""
    rows = random_rows(rng, rng.randint(1, 6))
    data = write_statement(rows, d)
    text = data.decode(d.encoding)
    if kind == "truncate":
        return data[: rng.randrange(len(data))], MAX_STATEMENT_BYTES
    if kind == "drop_column":
        lines = text.split("\r\n")
        index = len(d.preamble) + rng.randint(0, len(rows))  # the header or a row
        fields = next(csv.reader([lines[index]]))
        del fields[rng.randrange(len(fields))]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        lines[index] = out.getvalue()
        return "\r\n".join(lines).encode(d.encoding), MAX_STATEMENT_BYTES
    if kind == "forbidden_byte":  # a byte no statement holds, in place of any byte
        position = rng.randrange(len(data))
        return data[:position] + bytes([rng.choice(b"\x00\x01\x1b\x7f\xff")]) + data[
            position + 1 :
        ], MAX_STATEMENT_BYTES
    if kind == "nul":
        position = rng.randint(0, len(data))
        return data[:position] + b"\x00" + data[position:], MAX_STATEMENT_BYTES
    if kind == "wrong_encoding":
        other = rng.choice([e for e in ("utf-8", "gbk", "utf-16", "utf-32") if e != d.encoding])
        return text.encode(other), MAX_STATEMENT_BYTES
    if kind == "too_large":
        return data, rng.randrange(len(data))
    return rng.randbytes(rng.randint(0, 3000)), 10_000  # random binary


#: Each kind of damage, and the problems it may be reported as (the first one met in the file).
DAMAGE = {
    "truncate": {"truncated", "missing_summary", "missing_header", "encoding"},
    "drop_column": {"field_count", "missing_columns"},
    "forbidden_byte": {"binary", "encoding"},
    "nul": {"binary"},
    "wrong_encoding": {"binary", "encoding", "unexpected_line", "missing_header"},
    "too_large": {"too_large"},
    "binary": set(PROBLEMS) - {"unknown_dialect"},
}


def test_a_thousand_malformed_statements_each_raise_a_statement_error_naming_a_line():
    rng = random.Random(20240501)
    kinds = list(DAMAGE)
    seen: dict[str, int] = {}
    for number in range(1000):
        d, kind = DIALECTS[number % 2], kinds[number % len(kinds)]
        data, max_bytes = mutate(rng, d, kind)
        try:
            parse_statement(data, d, max_bytes=max_bytes)
        except StatementError as error:
            assert_well_formed(error, data)
            assert error.params["problem"] in DAMAGE[kind], (kind, error.params, data[:200])
            seen[error.params["problem"]] = seen.get(error.params["problem"], 0) + 1
        else:
            pytest.fail(f"{kind} #{number} in {d.name} was read: {data[:200]!r}")
    assert sum(seen.values()) == 1000
    assert {"truncated", "encoding", "binary", "too_large", "field_count", "missing_columns"} <= set(seen)


def test_random_byte_flips_give_a_statement_error_or_a_statement_and_nothing_else():
    rng = random.Random(99)
    errors = 0
    for number in range(1000):
        d = DIALECTS[number % 2]
        data = bytearray(write_statement(random_rows(rng, rng.randint(0, 4)), d))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        try:
            statement = parse_statement(bytes(data), d)
        except StatementError as error:
            assert_well_formed(error, bytes(data))
            errors += 1
        else:
            assert isinstance(statement, Statement)  # a flip inside a value can leave a valid file
    assert errors > 500


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4000))
def test_any_bytes_raise_only_statement_errors(data):
    for d in DIALECTS:
        with pytest.raises(StatementError) as caught:
            parse_statement(data, d)
        assert_well_formed(caught.value, data)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from('`#,"\r\n 0123456789.-:总交易单数金额手续费合计笔元付款SUCCESS'), max_size=400
    )
)
def test_text_that_almost_looks_like_a_statement_raises_only_statement_errors(text):
    data = text_of(WECHAT) + text
    for d in DIALECTS:
        try:
            parse_statement(data.encode(d.encoding), d)
        except StatementError as error:
            assert_well_formed(error, data.encode(d.encoding))


# One test per problem: the line named is the right one ---------------------------------------

WECHAT_TEXT = text_of(WECHAT)  # header 1, rows 2-4, summary marker 5, figures 6
ALIPAY_TEXT = text_of(ALIPAY)  # preamble 1-4, header 5, rows 6-8, end rule 9, summary 10, export time 11


def replace_line(text: str, number: int, new: str) -> str:
    lines = text.split("\r\n")
    lines[number - 1] = new
    return "\r\n".join(lines)


def line_of(text: str, number: int) -> str:
    return text.split("\r\n")[number - 1]


def test_too_large_is_checked_before_decoding():
    data = b"\xff" * 100
    error = error_for(data, max_bytes=99)
    assert (error.params["problem"], error.params["line"], error.params["size"]) == ("too_large", "0", "100")
    assert error_for(WECHAT_TEXT.encode(), max_bytes=10).params["problem"] == "too_large"


def test_binary_names_the_line_of_the_nul_or_control_character():
    error = error_for(replace_line(WECHAT_TEXT, 3, line_of(WECHAT_TEXT, 3) + "\x00"))
    assert (error.params["problem"], error.params["line"]) == ("binary", "3")
    error = error_for(replace_line(ALIPAY_TEXT, 7, "4200002,R\x07,x"), ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("binary", "7")
    error = error_for(WECHAT_TEXT.replace("`R-3", "`R\r-3"))
    assert (error.params["problem"], error.params["line"]) == ("binary", "4")


def test_encoding_names_the_line_of_the_bad_byte():
    data = WECHAT_TEXT.encode().replace(b"`R-2", "`订单".encode("gbk"))
    assert (error_for(data).params["problem"], error_for(data).params["line"]) == ("encoding", "3")
    data = ALIPAY_TEXT.encode("gbk").replace(b"R-2", b"R\xff2")
    error = error_for(data, ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["encoding"]) == ("encoding", "7", "gbk")


def test_truncated_names_the_last_line_or_the_missing_one():
    error = error_for(WECHAT_TEXT[:-3])
    assert (error.params["problem"], error.params["line"]) == ("truncated", "6")
    error = error_for(ALIPAY_TEXT.removesuffix("\r\n"), ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("truncated", "11")
    error = error_for(WECHAT_TEXT.removesuffix("\n"))  # cut between CR and LF
    assert (error.params["problem"], error.params["line"]) == ("truncated", "6")
    error = error_for(ALIPAY_TEXT[: ALIPAY_TEXT.index("#导出时间")], ALIPAY)  # cut at a line end
    assert (error.params["problem"], error.params["line"]) == ("truncated", "11")


def test_missing_header():
    assert error_for(b"").params["line"] == "1"
    error = error_for(ALIPAY_TEXT[: ALIPAY_TEXT.index("支付宝交易号")], ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("missing_header", "5")
    error = error_for(replace_line(WECHAT_TEXT, 1, "date,order,ref,type,state,amount,fee"))
    assert (error.params["problem"], error.params["line"]) == ("missing_header", "1")


def test_missing_columns_and_a_repeated_column_name_the_header_line():
    error = error_for(WECHAT_TEXT.replace(",手续费\r\n", ",服务费\r\n", 1))
    assert (error.params["problem"], error.params["line"], error.params["columns"]) == (
        "missing_columns",
        "1",
        "手续费",
    )
    error = error_for(ALIPAY_TEXT.replace("状态", "金额（元）", 1), ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("bad_header", "5", "金额（元）")


def test_extra_columns_in_the_header_are_ignored():
    lines = WECHAT_TEXT.split("\r\n")
    lines[0] += ",备注"
    for n in (1, 2, 3):
        lines[n] += ",`anything"
    assert parse_statement("\r\n".join(lines).encode(), WECHAT).rows == tuple(sample_rows())


def test_unexpected_lines_in_the_fixed_parts():
    error = error_for(replace_line(ALIPAY_TEXT, 2, "#帐号：[1]"), ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("unexpected_line", "2")
    error = error_for(ALIPAY_TEXT + "#多出来的一行\r\n", ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["value"]) == (
        "unexpected_line",
        "12",
        "#多出来的一行",
    )
    error = error_for(WECHAT_TEXT + "\r\n")
    assert (error.params["problem"], error.params["line"]) == ("unexpected_line", "7")


def test_bad_csv_and_field_count_name_the_row():
    error = error_for(WECHAT_TEXT.replace("`R-2", '"`R-2'))
    assert (error.params["problem"], error.params["line"]) == ("bad_csv", "3")
    error = error_for(WECHAT_TEXT.replace("`R-3", "`R-3,`extra"))
    assert (error.params["problem"], error.params["line"], error.params["found"]) == ("field_count", "4", "8")
    error = error_for(ALIPAY_TEXT.replace("4200001,", "", 1), ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["expected"]) == ("field_count", "6", "7")


def test_bad_prefix_and_missing_value():
    error = error_for(WECHAT_TEXT.replace("`300.00", "300.00"))
    assert (error.params["problem"], error.params["line"], error.params["column"]) == ("bad_prefix", "2", "金额")
    error = error_for(WECHAT_TEXT.replace("`R-3", "`"))
    assert (error.params["problem"], error.params["line"], error.params["column"]) == (
        "missing_value",
        "4",
        "商户订单号",
    )


@pytest.mark.parametrize(
    "bad", ["2024-5-1 10:00:00", "2024-02-30 10:00:00", "2024-05-01T10:00:00", "２０２４-05-01 10:00:00"]
)
def test_bad_time_names_the_row(bad):
    error = error_for(ALIPAY_TEXT.replace("2024-05-01 10:00:00,", f"{bad},"), ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("bad_time", "7", bad)
    assert error.params["example"] == "2024-05-01 09:08:07"


@pytest.mark.parametrize("bad", ["1.2.3", "-1.00", "1.234", "1.5", "1", "01.00", "１.00", "1e3", "NaN", " 1.00"])
def test_bad_amount_names_the_row_and_the_text(bad):
    error = error_for(WECHAT_TEXT.replace("`50.00", f"`{bad}"))
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("bad_amount", "3", bad)
    assert error.params["column"] == "金额"
    error = error_for(ALIPAY_TEXT.replace("0.01,0.00", f"0.01,{bad}"), ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["column"]) == (
        "bad_amount",
        "8",
        "服务费（元）",
    )


def test_the_offending_value_is_cut_to_forty_characters():
    error = error_for(WECHAT_TEXT.replace("`50.00", "`" + "9" * 100))
    assert error.params["value"] == "9" * 40


def test_a_zero_amount_is_refused_but_a_zero_fee_is_not():
    error = error_for(WECHAT_TEXT.replace("`0.01", "`0.00"))
    assert (error.params["problem"], error.params["line"]) == ("zero_amount", "4")


def test_unknown_kind_and_status_name_the_row():
    error = error_for(ALIPAY_TEXT.replace(",扣款,", ",扣费,"), ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("unknown_kind", "7", "扣费")
    error = error_for(WECHAT_TEXT.replace("`FAIL", "`PENDING"))
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("unknown_status", "4", "PENDING")


def test_missing_summary_names_where_it_should_start():
    error = error_for(WECHAT_TEXT[: WECHAT_TEXT.index("总交易单数")])
    assert (error.params["problem"], error.params["line"]) == ("missing_summary", "5")
    error = error_for(WECHAT_TEXT[: WECHAT_TEXT.index("`3,")])
    assert (error.params["problem"], error.params["line"]) == ("missing_summary", "6")
    error = error_for(
        ALIPAY_TEXT[: ALIPAY_TEXT.index("#-----------------------------------------业务明细列表结束")], ALIPAY
    )
    assert (error.params["problem"], error.params["line"]) == ("missing_summary", "9")
    error = error_for(ALIPAY_TEXT[: ALIPAY_TEXT.index("#交易合计")], ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("missing_summary", "10")


def test_bad_summary_lines_and_figures_name_the_summary_line():
    error = error_for(ALIPAY_TEXT.replace("#交易合计", "#交易总计"), ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("bad_summary", "10")
    error = error_for(WECHAT_TEXT.replace("`3,`350.01", "3,`350.01"))
    assert (error.params["problem"], error.params["line"]) == ("bad_summary", "6")
    error = error_for(WECHAT_TEXT.replace("`3,`350.01", "`3.0,`350.01"))
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("bad_count", "6", "3.0")
    error = error_for(ALIPAY_TEXT.replace("3笔", "三笔"), ALIPAY)
    assert (error.params["problem"], error.params["line"]) == ("bad_count", "10")
    error = error_for(ALIPAY_TEXT.replace("金额：350.01元", "金额：350.0.1元"), ALIPAY)
    assert (error.params["problem"], error.params["line"], error.params["value"]) == ("bad_amount", "10", "350.0.1")


def test_every_problem_has_a_message_in_both_languages():
    for problem, english in PROBLEMS.items():
        assert load_messages("en")[f"error.statement.{problem}"] == english
        assert f"error.statement.{problem}" in load_messages("zh-CN")
    assert "error.statement" in load_messages("zh-CN")


def test_a_utf8_byte_order_mark_is_accepted():
    assert parse_statement(b"\xef\xbb\xbf" + WECHAT_TEXT.encode(), WECHAT).rows == tuple(sample_rows())


# The quick reader of plain rows and the strict reader agree -----------------------------------


def outcome(data: bytes, d) -> object:
    try:
        statement = parse_statement(data, d)
    except StatementError as error:
        return ("error", error.key, dict(error.params))
    return statement, [row.line for row in statement.rows], [row.at.tzinfo for row in statement.rows]


ROW_DAMAGE = (
    lambda v: v.replace("2024-05-01", "2024-02-30"),  # no such day
    lambda v: v.replace("300.00", "0.00"),  # a zero amount
    lambda v: v.replace("300.00", "300.0"),
    lambda v: v.replace("300.00", "0300.00"),
    lambda v: v.replace("R-1", '"R-1"'),  # quoted: the same value
    lambda v: v.replace("R-1", '"R,1"'),  # quoted with a comma inside
    lambda v: v.replace("R-1", ""),
    lambda v: v.replace("`R-1", "R-1"),
    lambda v: v.replace("09:08:07", "9:08:07"),
    lambda v: v.replace("09:08:07", "０9:08:07"),
    lambda v: v + ",",
    lambda v: v.replace(",", ",,", 1),
)


@pytest.mark.parametrize("damage", range(len(ROW_DAMAGE)))
@pytest.mark.parametrize("d", DIALECTS, ids=lambda d: d.name)
def test_the_quick_reader_of_plain_rows_reads_exactly_what_the_strict_reader_reads(d, damage, monkeypatch):
    text = text_of(d)
    lines = text.split(d.line_end)
    first = next(i for i, line in enumerate(lines) if "R-1" in line)
    lines[first] = ROW_DAMAGE[damage](lines[first])
    data = d.line_end.join(lines).encode(d.encoding)
    quick = outcome(data, d)
    monkeypatch.setattr(statements, "_plain_row_reader", lambda positions, dialect: None)
    assert outcome(data, d) == quick


def test_the_quick_and_the_strict_reader_agree_on_a_thousand_flipped_files(monkeypatch):
    rng = random.Random(7)
    files = []
    for number in range(1000):
        d = DIALECTS[number % 2]
        data = bytearray(write_statement(random_rows(rng, rng.randint(1, 4)), d))
        for _ in range(rng.randint(1, 2)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        files.append((bytes(data), d))
    quick = [outcome(data, d) for data, d in files]
    monkeypatch.setattr(statements, "_plain_row_reader", lambda positions, dialect: None)
    assert [outcome(data, d) for data, d in files] == quick
    assert sum(not isinstance(o, tuple) or o[0] != "error" for o in quick) > 100  # many still read
