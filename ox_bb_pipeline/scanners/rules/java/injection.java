// Semgrep test cases for injection.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package com.example;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.apache.commons.io.FilenameUtils;
import org.owasp.encoder.Encode;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;

public class Cases {
    void download(HttpServletRequest request, HttpServletResponse response) throws IOException {
        String name = request.getParameter("name");
        // ruleid: ox.java.path-traversal
        File file = new File("/srv/files", name);
        // ok: ox.java.path-traversal
        File safe = new File("/srv/files", FilenameUtils.getName(name));
        // ruleid: ox.java.xss
        response.getWriter().print("<p>" + name + "</p>");
        // ok: ox.java.xss
        response.getWriter().print("<p>" + Encode.forHtml(name) + "</p>");
        // ruleid: ox.java.open-redirect
        response.sendRedirect(request.getParameter("next"));
        // ok: ox.java.open-redirect
        response.sendRedirect("/home");
    }

    void lookup(HttpServletRequest request, java.sql.Connection connection) throws Exception {
        String id = request.getParameter("id");
        String sql = "SELECT * FROM users WHERE id = '" + id + "'";
        // ruleid: ox.java.sql-taint
        connection.createStatement().executeQuery(sql);
        // ruleid: ox.java.sql-taint
        connection.prepareCall("{call " + id + "}");
        java.sql.PreparedStatement statement = connection.prepareStatement("SELECT * FROM users WHERE id = ?");
        statement.setString(1, id);
        // ok: ox.java.sql-taint
        statement.executeQuery();
        // ok: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM users WHERE id = " + Integer.parseInt(id));
        // ruleid: ox.java.path-traversal
        new java.io.File("/srv/files", id);
    }

    void constants(HttpServletRequest request, java.sql.Connection connection) throws Exception {
        String param = request.getParameter("id");
        int num = 106;
        String dead = (7 * 18) + num > 200 ? "1" : param;
        // ok: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM t WHERE id = " + dead);
        String live = (7 * 42) - num > 200 ? "1" : param;
        // ruleid: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM t WHERE id = " + live);
        String never = "1";
        if ((500 / 42) + num > 200) never = param;
        // ok: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM t WHERE id = " + never);
    }

    @GetMapping("/preview")
    String preview(@RequestParam("url") String url) throws IOException {
        // ruleid: ox.java.ssrf
        new URL(url).openStream();
        // ok: ox.java.ssrf
        new URL("https://api.example.com/status").openStream();
        // ruleid: ox.java.open-redirect
        return "redirect:" + url;
    }

    void configure(HttpSecurity http) throws Exception {
        // ruleid: ox.java.csrf-disabled
        http.csrf().disable();
        // ok: ox.java.csrf-disabled
        http.cors().disable();
    }

    void remember(HttpServletResponse response, String token) {
        Cookie cookie = new Cookie("remember", token);
        // ruleid: ox.java.insecure-cookie
        cookie.setSecure(false);
        // ok: ox.java.insecure-cookie
        cookie.setHttpOnly(true);
        response.addCookie(cookie);
    }
}
