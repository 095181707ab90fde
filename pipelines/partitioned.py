"""The nightly batch's input, read one chunk at a time: memory flat in the log and leads.

The leads table is read and checked in chunks too; each chunk's clean open leads go to
disk as they come and are cut into partitions at the end (``pipelines.lead_parts``), so
memory holds their ids, not their rows. The activity log, the big
table (tens of rows a lead), is read in chunks of ``data.chunk_rows`` rows; each chunk is
typed and checked by the same contract as ``load_crm`` (Great Expectations suite, every
bad row quarantined with its reason and its row number in the source), and its clean
rows of open leads are appended to the Arrow file of their lead's partition: open leads
in ``lead_id`` order, ``scoring.partition_rows`` to a partition. The bad-row share, a rule
about the whole log, is checked once every chunk is, and every row read must end clean
or quarantined. Scoring then loads one partition file at a time.

The pass checks with the same contract in one vectorised step per chunk: the GX suites'
rules as column masks (``features.validation``, ``engine="numpy"``), the clean leads as a
compact lookup (``features.lead_index.LeadIndex``: ~45 bytes a lead, not a pandas index of
strings), which gives each activity's lead, its created_at and its partition at once.
Repeats across chunks are looked for only among the leads whose rows came in more than one
chunk (``activity_parts.drop_repeats``).

The files live in a folder the caller owns (the score flow's temporary folder), which
every worker must see (see ``runner.spill_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.features.accounts import AccountHistory
from leadscore.features.contract import (
    CLOSED_AT,
    CREATED_AT,
    LEAD_ID,
    OCCURRED_AT,
    OPEN,
    STATUS,
    data_end,
)
from leadscore.features.joins import JoiningReader
from leadscore.features.lead_index import LeadIndex, hashes_in_slices
from leadscore.features.market import OutcomeHistory
from leadscore.features.reader import PartsTally, add_notes
from leadscore.models.scoring import Partition
from leadscore.pipelines.activity_parts import ACTIVITY_SCHEMA, append_activities, drop_repeats
from leadscore.pipelines.background import InOrder, prefetched
from leadscore.pipelines.lead_parts import LeadPart, OpenLeads
from leadscore.pipelines.runtime import release_free_memory
from leadscore.pipelines.settings import Settings
from leadscore.pipelines.sources import (
    account_keys,
    contract_reader,
    display_sources,
    leads_reader,
    load_leads,
    read_chunks,
    second_tables,
    source_rows,
)
from leadscore.pipelines.spilled import read_arrow


@dataclass(frozen=True)
class PartFile:
    """A partition of open leads on disk: the Arrow file of their rows, and of their clean
    activities (None: a flat export, whose leads have no activity log)."""

    leads: Path
    n_leads: int
    activities: Path | None

    def __len__(self) -> int:
        return self.n_leads

    def load(self) -> Partition:
        """The partition in memory, as ``models.scoring`` scores it."""
        leads = read_arrow(self.leads)
        if self.activities is None:
            return Partition(leads, None)
        return Partition(leads, read_arrow(self.activities))


@dataclass(frozen=True)
class StreamedCRM:
    """The open leads' partitions on disk, the quarantine and the counts."""

    parts: list[PartFile]
    quarantine: pd.DataFrame
    n_leads_in: int
    n_clean_leads: int
    n_activities_in: int
    end: pd.Timestamp
    unknown_activity_types: int = 0
    history: OutcomeHistory | None = None  # the leads' outcomes, when features.market is on
    notes: dict[str, int] = field(default_factory=dict)  # what reading normalised, counted
    accounts: AccountHistory | None = None  # the joined tables' accounts (data.joins)

    def quarantined(self, source: str) -> int:
        return int((self.quarantine["source"] == source).sum())


@dataclass(frozen=True)
class _Leads:
    """What the activity pass needs of the checked leads."""

    parts: list[LeadPart]  # clean open leads per partition file, in id order
    created: LeadIndex  # clean leads (table order): created_at, place among the open ones
    quarantine: pd.DataFrame
    n_in: int
    n_clean: int
    latest: pd.DataFrame  # one row: the latest created_at and closed_at
    history: OutcomeHistory | None  # the leads' outcomes, when features.market is on
    notes: dict[str, int] = field(default_factory=dict)
    members: pd.DataFrame | None = None  # clean leads' id, created_at, join keys (data.joins)


def _market_columns(settings: Settings) -> list[str]:
    """Lead columns the outcome history needs (none when features.market is off)."""
    market = settings.features.market
    return [LEAD_ID, STATUS, CLOSED_AT, *market.period_columns] if market.enabled else []


def _members(leads: pd.DataFrame, settings: Settings) -> pd.DataFrame | None:
    """What the account features need of clean leads: id, created_at and join keys."""
    keys = account_keys(settings)
    return leads[[LEAD_ID, CREATED_AT, *dict.fromkeys(keys.values())]] if keys else None


def _history(leads: pd.DataFrame, settings: Settings) -> OutcomeHistory | None:
    market = settings.features.market
    return OutcomeHistory.of(leads, market) if market.enabled else None


def stream_crm(settings: Settings, folder: Path, now: pd.Timestamp | None = None) -> StreamedCRM:
    """Check the leads, then the activity log, chunk by chunk, into partition files.

    The pass's lookups (the lead index, ~50 bytes a lead) are freed when it returns; their
    pages are handed back then, not left for scoring to reuse or not."""
    crm = _stream_crm(settings, folder, now)
    release_free_memory(collect=False)
    return crm


def _stream_crm(settings: Settings, folder: Path, now: pd.Timestamp | None) -> StreamedCRM:
    data = settings.data
    streamed = data.activities is not None and not data.lead_id_from_row
    # the open leads wait on disk: only their ids stay in memory
    read = _leads_in_chunks if streamed else _leads_whole
    leads = read(settings, now, OpenLeads(Path(folder)))
    release_free_memory(collect=False)  # the cut's and the index's pages, before the log
    n_parts = len(leads.parts)
    lead_files = [PartFile(p.path, len(p.ids), None) for p in leads.parts]
    keys = account_keys(settings)
    half_life = settings.features.half_life_days
    if data.activities is None:
        accounts = None
        if keys and leads.members is not None:
            accounts = AccountHistory.of(leads.members, None, keys, half_life)
        return StreamedCRM(
            accounts=accounts,
            parts=lead_files,
            quarantine=leads.quarantine,
            n_leads_in=leads.n_in,
            n_clean_leads=leads.n_clean,
            n_activities_in=0,
            end=data_end(leads.latest, None),
            history=leads.history,
            notes=leads.notes,
        )
    rows = settings.scoring.partition_rows
    reader = replace(contract_reader(settings), engine="numpy")
    index = leads.created
    paths = [Path(folder) / f"activities-{i:06d}.arrow" for i in range(n_parts)]
    dictionaries = [p.ids for p in leads.parts]
    writers = [pa.ipc.new_file(str(p), ACTIVITY_SCHEMA) for p in paths]
    leads = replace(leads, parts=[])
    tally = PartsTally(reader.activities_source)
    latest = pd.NaT
    n_chunks = 0
    n_open = int((index.open_position >= 0).sum())
    seen, split = np.zeros(n_open, dtype=bool), np.zeros(n_open, dtype=bool)
    act_lead: list[np.ndarray] = []  # each clean activity's lead, for the account features
    act_time: list[np.ndarray] = []
    chunks = prefetched(read_chunks(data.activities, rows=data.chunk_rows))
    try:
        # the next chunk is read, and the last one appended, while this one is checked
        with InOrder("append-activities") as appends:
            for chunk in chunks:
                n_chunks += 1
                rows_in = tally.next_rows(len(chunk))
                checked = reader.activities(chunk, index, now, rows=rows_in, table_rules=False)
                tally.add(checked, len(chunk))
                if len(checked.rows):
                    newest = checked.rows[OCCURRED_AT].max()
                    latest = newest if pd.isna(latest) else max(latest, newest)
                assert checked.lead_positions is not None
                opened = index.open_position[checked.lead_positions]
                appends.submit(append_activities, checked.rows, opened, rows, writers, dictionaries)
                here = np.zeros(n_open, dtype=bool)
                here[opened[opened >= 0]] = True
                split |= here & seen  # leads whose rows came in more than one chunk
                seen |= here
                if leads.members is not None:  # members: the clean leads in the index's order
                    act_lead.append(checked.lead_positions)
                    stamps = checked.rows[OCCURRED_AT].to_numpy(dtype="datetime64[ns]")
                    act_time.append(stamps.view(np.int64))
                del checked, chunk
                release_free_memory(collect=False)
    finally:
        chunks.close()
        for writer in writers:
            writer.close()
    if n_chunks > 1 and data.duplicate_activities == "drop":
        # a chunk drops its own repeats; a partition holds all of its leads' rows
        repeats = sum(
            drop_repeats(p, split[i * rows : (i + 1) * rows]) for i, p in enumerate(paths)
        )
        tally.n_clean -= repeats
        tally.n_dropped += repeats
        key = "duplicate_activities_dropped"
        tally.notes[key] = tally.notes.get(key, 0) + repeats
    everything = tally.close(
        data.validation, before=[leads.quarantine], empty_ok=True, lines=reader.activities_lines
    )
    accounts = None
    if keys and leads.members is not None:
        accounts = AccountHistory.of_positions(
            leads.members,
            np.concatenate(act_lead) if act_lead else np.empty(0, np.int64),
            np.concatenate(act_time) if act_time else np.empty(0, np.int64),
            keys,
            half_life,
        )
    return StreamedCRM(
        accounts=accounts,
        parts=[replace(f, activities=p) for f, p in zip(lead_files, paths, strict=True)],
        quarantine=everything,
        n_leads_in=leads.n_in,
        n_clean_leads=leads.n_clean,
        n_activities_in=tally.n_in,
        end=data_end(leads.latest, None, latest),
        unknown_activity_types=tally.unknown_types,
        history=leads.history,
        notes=add_notes(dict(leads.notes), tally.notes),
    )


def _joined(parts: list[pd.Series]) -> pd.Series:
    return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype="str")


def _index(ids: pd.Series, created: pd.Series, parts: list[LeadPart]) -> LeadIndex:
    """The clean leads as a compact lookup, the open ones numbered in partition order."""
    index = LeadIndex.of(ids, created)
    return index.with_open_at(np.concatenate([p.clean for p in parts]))


def _duplicated(keys: pd.Series) -> pd.Index:
    """The id keys held by more than one row (nulls are no id and never duplicated).

    Equal ids have equal 64-bit hashes: sorted in place (8 bytes an id), no two equal
    hashes (the usual table) means no duplicate; otherwise only the rows whose hash
    repeats are compared as text. Arrow's distinct count, used before, built a hash table
    of every id (~40 bytes an id at 3M, ~160 at 5M) while the table's ids were held.
    """
    hashes = hashes_in_slices(keys)
    hashes.sort()
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]
    del hashes
    if not len(repeated):
        return pd.Index([], dtype=keys.dtype)
    keys = keys[np.isin(hashes_in_slices(keys), repeated)]  # every copy of a repeated id
    return pd.Index(keys[keys.duplicated(keep=False)].dropna().unique())


def _latest(leads: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: [leads[c].max()] for c in (CREATED_AT, CLOSED_AT)})


def _leads_whole(settings: Settings, now: pd.Timestamp | None, open_leads: OpenLeads) -> _Leads:
    """The leads table read and checked in one piece (flat exports, row-number ids)."""
    checked, n_in = load_leads(settings, now)
    leads = checked.rows
    opened = (leads[STATUS] == OPEN).to_numpy(dtype=bool)
    open_leads.add(leads[opened], np.flatnonzero(opened))
    parts = open_leads.cut(settings.scoring.partition_rows)
    return _Leads(
        parts=parts,
        created=_index(leads[LEAD_ID], leads[CREATED_AT], parts),
        quarantine=checked.quarantine,
        n_in=n_in,
        n_clean=len(leads),
        latest=_latest(leads),
        history=_history(leads, settings),
        notes=dict(checked.notes or {}),
        members=_members(leads, settings),
    )


def _leads_in_chunks(settings: Settings, now: pd.Timestamp | None, open_leads: OpenLeads) -> _Leads:
    """The leads table read in chunks: ids first (unless it is one chunk), then checked.

    The first pass reads the ids, to find those duplicated anywhere in the table (a chunk
    cannot see another's); a table known to fit one chunk (Parquet's row count) finds them
    in that chunk instead, read once. The second pass types and checks each chunk with the
    same suite as the whole-table load, keeping each clean lead's created_at; the clean
    open leads' rows go to ``open_leads`` (``pipelines.lead_parts``), cut into partition
    files at the end. The table rules (bad-row share, nearly-null attributes) are checked
    on the totals.
    """
    data = settings.data
    reader = replace(leads_reader(settings), engine="numpy")
    n_rows = source_rows(data.leads)
    one_chunk = n_rows is not None and n_rows <= data.chunk_rows
    ids = (
        []
        if one_chunk
        else [
            reader.lead_ids(chunk)
            for chunk in read_chunks(data.leads, reader.id_column, rows=data.chunk_rows)
        ]
    )
    every_id = pd.concat(ids, ignore_index=True) if ids else pd.Series([], dtype="str")
    release_free_memory(collect=False)  # the id reads' pages (whole chunks were read)
    duplicated = None if one_chunk else _duplicated(every_id)
    del ids
    if not one_chunk and not isinstance(reader, JoiningReader):
        every_id = pd.Series([], dtype=every_id.dtype)  # no second table checks the ids
    release_free_memory(collect=False)  # the duplicate check's pages
    clean_ids, created, latest, outcomes, members = [], [], [], [], []
    n_clean = 0
    market = _market_columns(settings)
    tally = PartsTally(reader.leads_source)
    text = display_sources(settings)
    for chunk in read_chunks(data.leads, reader.id_column, data.chunk_rows, text):
        rows_in = tally.next_rows(len(chunk))
        if one_chunk:  # the whole table: its duplicates are found within it
            every_id = reader.lead_ids(chunk)
        checked = reader.leads(chunk, now, rows=rows_in, duplicated=duplicated, table_rules=False)
        tally.add(checked, len(chunk))
        clean = checked.rows
        clean_ids.append(clean[LEAD_ID])
        created.append(clean[CREATED_AT])
        opened = (clean[STATUS] == OPEN).to_numpy(dtype=bool)
        # every lead open (a chunk of an open-leads export): the frame itself, no copy, and
        # the open ids share the clean ids' buffers
        open_rows = clean if opened.all() else clean[opened]
        open_leads.add(open_rows, n_clean + np.flatnonzero(opened))
        del open_rows
        if n_rows is not None and not one_chunk:  # more chunks follow: not kept for the cut
            open_leads.spill()
        n_clean += len(clean)
        latest.append(_latest(clean))
        if market:  # in table order: periods run across chunks
            outcomes.append(clean[[c for c in market if c in clean]])  # absent: named below
        members.append(_members(clean, settings))
        del checked, chunk, clean
        release_free_memory(collect=False)
    everything = tally.close(data.validation, lines=reader.leads_lines)
    more, more_notes = second_tables(reader, every_id)
    if len(more):
        everything = pd.concat([everything, more], ignore_index=True)
    add_notes(tally.notes, more_notes)
    parts = open_leads.cut(settings.scoring.partition_rows)
    index = _index(_joined(clean_ids), _joined(created), parts)
    del clean_ids, created
    return _Leads(
        parts=parts,
        created=index,
        quarantine=everything,
        n_in=tally.n_in,
        n_clean=len(index),
        latest=_latest(pd.concat(latest, ignore_index=True)),
        history=_history(pd.concat(outcomes, ignore_index=True), settings) if market else None,
        notes=tally.notes,
        members=pd.concat(members, ignore_index=True) if account_keys(settings) else None,
    )
