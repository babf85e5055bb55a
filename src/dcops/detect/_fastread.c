/* The detection reader's common case in C: a parsed JSON event object -> Event.
 *
 * `event_from_obj(obj, line=b"")` does what jsonio's Python `event_from_obj` does, for the one
 * shape every dcops writer emits: an `id` text, a `timestamp` ISO 8601 text, a `fields` object,
 * text or absent `source` and `raw`, and a `logsource` object the reader has seen before. Any
 * other shape (no id, POSIX seconds, no `fields` object, a logsource with `also`, a value of the
 * wrong type, a timestamp that does not read) is handed whole to the Python function given to
 * `setup`, which names what is wrong. So this file reads only objects orjson already built and
 * never raises an error of its own about the input: it has no parser to harden.
 *
 * Why: in the Python reader six `dict.get` calls, the dataclass `__init__` of Event and the
 * frames cost about 12,800 instructions per event, as much as orjson's parse of the line.
 *
 * An Event is a `slots=True` dataclass: it is allocated by its type and its seven slots are set
 * through the offsets its member descriptors publish (checked at `setup`), which is what its
 * generated `__init__` does, without the Python frame.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>

enum { ID, TIMESTAMP, SOURCE, LOGSOURCE, FIELDS, RAW, PARSED, NSLOTS };
static const char *slot_names[NSLOTS] = {
    "id", "timestamp", "source", "logsource", "fields", "raw", "parsed"};

static PyTypeObject *event_type;  /* dcops.model.event.Event */
static PyObject *slow;            /* the Python reader: every case but the common one */
static PyObject *ls_cache;        /* (product, service, category) -> LogSource, the Python one */
static PyObject *empty_ls;        /* LogSource() */
static PyObject *fromiso;         /* datetime.fromisoformat */
static PyObject *aware;           /* naive datetime -> the same time in UTC */
static Py_ssize_t offsets[NSLOTS];
/* the last timestamp text read and its datetime: a burst of lines repeats the same second */
static PyObject *last_text, *last_dt;

static PyObject *k_fields, *k_id, *k_timestamp, *k_at_timestamp, *k_source, *k_raw,
    *k_logsource, *k_product, *k_service, *k_category, *k_also, *s_jsonl, *s_empty;

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

static PyObject *
setup(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *etype, *slow_fn, *cache, *empty, *iso, *aware_fn;
    Py_ssize_t off[NSLOTS];
    if (!PyArg_ParseTuple(args, "O!OO!OOO:setup", &PyType_Type, &etype, &slow_fn, &PyDict_Type,
                          &cache, &empty, &iso, &aware_fn))
        return NULL;
    for (int i = 0; i < NSLOTS; i++) {
        PyObject *d = PyObject_GetAttrString(etype, slot_names[i]);
        if (d == NULL)
            return NULL;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type)
                 && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX
                 && !(((PyMemberDescrObject *)d)->d_member->flags & READONLY);
        if (ok)
            off[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok)
            return PyErr_Format(PyExc_TypeError,
                                "setup: %s.%s is not a writable object slot",
                                ((PyTypeObject *)etype)->tp_name, slot_names[i]);
    }
    memcpy(offsets, off, sizeof offsets);
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(etype));
    Py_XSETREF(slow, Py_NewRef(slow_fn));
    Py_XSETREF(ls_cache, Py_NewRef(cache));
    Py_XSETREF(empty_ls, Py_NewRef(empty));
    Py_XSETREF(fromiso, Py_NewRef(iso));
    Py_XSETREF(aware, Py_NewRef(aware_fn));
    Py_CLEAR(last_text);
    Py_CLEAR(last_dt);
    Py_RETURN_NONE;
}

/* obj[key] borrowed, NULL when absent or on an error (PyErr_Occurred tells) */
#define GET(d, k) PyDict_GetItemWithError((d), (k))

static PyObject *
take_slow(PyObject *obj, PyObject *line)
{
    if (PyErr_Occurred())
        return NULL;
    return PyObject_CallFunctionObjArgs(slow, obj, line, NULL);
}

static inline int
is_text(PyObject *v)
{
    return v != NULL && PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) > 0;
}

/* the datetime of a timestamp text (new reference), or NULL: with no error set, the text does
 * not read and the Python reader is to name it */
static PyObject *
read_time(PyObject *ts)
{
    if (last_text != NULL && (ts == last_text || PyUnicode_Compare(ts, last_text) == 0))
        return Py_NewRef(last_dt);
    PyObject *dt = PyObject_CallOneArg(fromiso, ts);
    if (dt == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError))
            PyErr_Clear();
        return NULL;
    }
    if (!PyDateTime_Check(dt)) {  /* fromisoformat of a subclass: leave it to Python */
        Py_DECREF(dt);
        return NULL;
    }
    if (PyDateTime_DATE_GET_TZINFO(dt) == Py_None)
        Py_SETREF(dt, PyObject_CallOneArg(aware, dt));
    if (dt != NULL) {
        Py_XSETREF(last_text, Py_NewRef(ts));
        Py_XSETREF(last_dt, Py_NewRef(dt));
    }
    return dt;
}

/* the LogSource of a `logsource` value (a new reference), or NULL: with no error set, for the
 * Python reader to decide */
static PyObject *
read_logsource(PyObject *lsd)
{
    if (lsd == NULL || lsd == Py_None)
        return Py_NewRef(empty_ls);
    if (!PyDict_CheckExact(lsd))
        return NULL;
    PyObject *also = GET(lsd, k_also);
    if (also != NULL && also != Py_None)  /* further logsources: rare, read in Python */
        return NULL;
    PyObject *p = GET(lsd, k_product), *s = GET(lsd, k_service), *c = GET(lsd, k_category);
    if (PyErr_Occurred())
        return NULL;
    PyObject *key = PyTuple_Pack(3, p ? p : Py_None, s ? s : Py_None, c ? c : Py_None);
    if (key == NULL)
        return NULL;
    PyObject *ls = GET(ls_cache, key);  /* only checked logsources are ever put there */
    Py_XINCREF(ls);
    Py_DECREF(key);
    if (ls == NULL && PyErr_ExceptionMatches(PyExc_TypeError))  /* a list among the parts */
        PyErr_Clear();
    return ls;
}

static PyObject *
event_from_obj(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "event_from_obj expected 1 or 2 arguments, got %zd",
                            nargs);
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "dcops.detect._fastread: setup() was not called");
        return NULL;
    }
    PyObject *obj = args[0];
    PyObject *line = nargs == 2 ? args[1] : NULL;
    if (line == NULL) {  /* the Python reader's default */
        static PyObject *no_line;
        if (no_line == NULL && (no_line = PyBytes_FromStringAndSize("", 0)) == NULL)
            return NULL;
        line = no_line;
    }
    if (!PyDict_CheckExact(obj))
        return take_slow(obj, line);
    /* every value is held as soon as it is read: a lookup among keys that are not text, or the
     * `aware` call, may run Python code, and another thread could then change `obj` */
    enum { LSD = NSLOTS, TS, NHELD };
    PyObject *v[NHELD] = {NULL};
    static PyObject **const keys[NHELD] = {
        [ID] = &k_id, [TIMESTAMP] = NULL, [SOURCE] = &k_source, [LOGSOURCE] = NULL,
        [FIELDS] = &k_fields, [RAW] = &k_raw, [PARSED] = NULL, [LSD] = &k_logsource,
        [TS] = &k_timestamp};
    for (int i = 0; i < NHELD; i++) {
        if (keys[i] == NULL)
            continue;
        v[i] = GET(obj, *keys[i]);
        if (v[i] == NULL && PyErr_Occurred())
            goto error;
        Py_XINCREF(v[i]);
    }
    if (v[FIELDS] == NULL || !PyDict_CheckExact(v[FIELDS]) || !is_text(v[ID]))
        goto slow;
    PyObject *ts = v[TS];
    if (ts == NULL || ts == Py_None || (PyUnicode_CheckExact(ts) && PyUnicode_GET_LENGTH(ts) == 0)) {
        Py_XSETREF(v[TS], GET(obj, k_at_timestamp));
        if (v[TS] == NULL && PyErr_Occurred())
            goto error;
        Py_XINCREF(v[TS]);
    }
    if (!is_text(v[TS]))
        goto slow;
    PyObject *source = v[SOURCE];
    if (source == NULL || source == Py_None
        || (PyUnicode_CheckExact(source) && PyUnicode_GET_LENGTH(source) == 0))
        Py_XSETREF(v[SOURCE], Py_NewRef(s_jsonl));
    else if (!PyUnicode_CheckExact(source))
        goto slow;
    if (v[RAW] == NULL || v[RAW] == Py_None)
        Py_XSETREF(v[RAW], Py_NewRef(s_empty));
    else if (!PyUnicode_CheckExact(v[RAW]))
        goto slow;
    if ((v[LOGSOURCE] = read_logsource(v[LSD])) == NULL)
        goto fallback;
    if ((v[TIMESTAMP] = read_time(v[TS])) == NULL)
        goto fallback;
    PyObject *ev = event_type->tp_alloc(event_type, 0);
    if (ev == NULL)
        goto error;
    v[PARSED] = Py_NewRef(Py_True);
    for (int i = 0; i < NSLOTS; i++) {  /* each reference goes to the event */
        *(PyObject **)((char *)ev + offsets[i]) = v[i];
        v[i] = NULL;
    }
    Py_XDECREF(v[LSD]);
    Py_XDECREF(v[TS]);
    return ev;
fallback:  /* NULL from a reader: an error, or a case for Python */
    if (PyErr_Occurred())
        goto error;
slow:
    for (int i = 0; i < NHELD; i++)
        Py_XDECREF(v[i]);
    return take_slow(obj, line);
error:
    for (int i = 0; i < NHELD; i++)
        Py_XDECREF(v[i]);
    return NULL;
}

/* memo_or(fields, name, memo, gates, hits): hits[k] |= the gates of fields[k].get(name), each
 * value looked up in `memo` (a field index's value -> gates dict) and, when the memo does not
 * hold it or cannot (a list), worked out by `gates(value)`. An absent value has no gates.
 *
 * index.RuleBucket's memoised column in one C loop: in Python it is three C-level maps (the
 * column, the probe, the merge) whose calls cost more than the two dict lookups they make. */
static PyObject *
memo_or(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "memo_or expected 5 arguments, got %zd", nargs);
    PyObject *fl = args[0], *name = args[1], *memo = args[2], *gates = args[3], *hits = args[4];
    if (!PyList_CheckExact(fl) || !PyList_CheckExact(hits) || !PyDict_Check(memo)) {
        PyErr_SetString(PyExc_TypeError, "memo_or(list, name, dict, callable, list)");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(fl);
    if (PyList_GET_SIZE(hits) != n) {
        PyErr_SetString(PyExc_ValueError, "memo_or: one hit per event");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n && k < PyList_GET_SIZE(fl) && k < PyList_GET_SIZE(hits); k++) {
        PyObject *d = PyList_GET_ITEM(fl, k);
        if (!PyDict_Check(d))
            return PyErr_Format(PyExc_TypeError, "memo_or: the fields of event %zd are %s, "
                                "not a dict", k, Py_TYPE(d)->tp_name);
        PyObject *v = PyDict_GetItemWithError(d, name);
        if (v == NULL) {
            if (PyErr_Occurred())
                return NULL;
            continue;  /* absent: no gate */
        }
        Py_INCREF(v);  /* `gates` runs Python code */
        PyObject *g = PyDict_GetItemWithError(memo, v);
        if (g != NULL)
            Py_INCREF(g);
        else if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_TypeError)) {
            Py_DECREF(v);
            return NULL;
        }
        else {
            PyErr_Clear();  /* a miss, or a value no dict can hold */
            g = PyObject_CallOneArg(gates, v);
        }
        Py_DECREF(v);
        if (g == NULL)
            return NULL;
        int any = PyObject_IsTrue(g);
        if (any > 0 && k < PyList_GET_SIZE(hits)) {
            PyObject *h = PyNumber_Or(PyList_GET_ITEM(hits, k), g);
            if (h == NULL)
                any = -1;
            else
                PyList_SetItem(hits, k, h);  /* steals h, releases the old one */
        }
        Py_DECREF(g);
        if (any < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"memo_or", (PyCFunction)(void (*)(void))memo_or, METH_FASTCALL,
     "memo_or(fields, name, memo, gates, hits): a memoised column's gates merged into hits."},
    {"setup", setup, METH_VARARGS,
     "setup(Event, slow, ls_cache, empty_ls, fromisoformat, aware): what the reader builds "
     "with and hands over to."},
    {"event_from_obj", (PyCFunction)(void (*)(void))event_from_obj, METH_FASTCALL,
     "event_from_obj(obj, line=b'') -> Event: jsonio.event_from_obj's common case in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastread",
    "The detection reader's common case in C (see jsonio.event_from_obj).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fastread(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    if (intern(&k_fields, "fields") || intern(&k_id, "id") || intern(&k_timestamp, "timestamp")
        || intern(&k_at_timestamp, "@timestamp") || intern(&k_source, "source")
        || intern(&k_raw, "raw") || intern(&k_logsource, "logsource")
        || intern(&k_product, "product") || intern(&k_service, "service")
        || intern(&k_category, "category") || intern(&k_also, "also")
        || intern(&s_jsonl, "jsonl") || intern(&s_empty, ""))
        return NULL;
    return PyModule_Create(&module);
}
