package dev.sdserve.api.a1111;

import java.util.List;

/**
 * A request error in AUTOMATIC1111's (FastAPI's) validation shape: HTTP 422 with
 * {@code {"detail": [{"loc": ["body", "steps"], "msg": "…", "type": "…"}]}}.
 */
public class A1111Exception extends RuntimeException {
    public record Detail(List<Object> loc, String msg, String type) {
    }

    private final List<Detail> details;

    public A1111Exception(List<Detail> details) {
        super(details.isEmpty() ? "invalid request" : details.get(0).loc() + ": " + details.get(0).msg());
        this.details = List.copyOf(details);
    }

    /** One error at {@code body.<path…>}. */
    public static A1111Exception at(String msg, String type, Object... path) {
        List<Object> loc = new java.util.ArrayList<>();
        loc.add("body");
        loc.addAll(List.of(path));
        return new A1111Exception(List.of(new Detail(loc, msg, type)));
    }

    public List<Detail> details() {
        return details;
    }
}
