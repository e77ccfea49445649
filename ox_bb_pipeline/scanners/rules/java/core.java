// Semgrep test cases for java.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package test;

import java.beans.XMLDecoder;
import java.io.ByteArrayInputStream;
import java.io.ObjectInputStream;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.util.Random;
import javax.crypto.Cipher;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import javax.script.ScriptEngine;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpServletResponse;
import javax.servlet.http.HttpSession;

public class Cases {

    Object decode(byte[] raw) throws Exception {
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(raw))) {
            // ruleid: ox.java.insecure-deserialization
            return in.readObject();
        }
    }

    Object decodeXml(byte[] raw) {
        // ruleid: ox.java.insecure-deserialization
        return new XMLDecoder(new ByteArrayInputStream(raw)).readObject();
    }

    Object script(ScriptEngine engine, String code) throws Exception {
        // ruleid: ox.java.script-eval
        return engine.eval(code);
    }

    Object constantScript(ScriptEngine engine) throws Exception {
        // ok: ox.java.script-eval
        return engine.eval("1 + 2");
    }

    static byte[] hashPasswordProperly(char[] password, byte[] salt) throws Exception {
        // ok: ox.java.weak-password-hash
        return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(new PBEKeySpec(password, salt, 600000, 256)).getEncoded();
    }

    Object decodeJson(ObjectMapper mapper, byte[] raw) throws Exception {
        // ok: ox.java.insecure-deserialization
        return mapper.readValue(raw, Map.class);
    }

    static String hash(String password) throws Exception {
        // ruleid: ox.java.weak-password-hash, ox.java.weak-hash
        MessageDigest digest = MessageDigest.getInstance("MD5");
        return new String(digest.digest(password.getBytes()));
    }

    static byte[] hashPassword(byte[] raw) throws Exception {
        // ruleid: ox.java.weak-password-hash, ox.java.weak-hash
        return MessageDigest.getInstance("SHA1").digest(raw);
    }

    static byte[] checksum(byte[] body) throws Exception {
        // ruleid: ox.java.weak-hash
        MessageDigest weak = MessageDigest.getInstance("SHA-1");
        // ok: ox.java.weak-hash
        MessageDigest strong = MessageDigest.getInstance("SHA-256");
        return strong.digest(weak.digest(body));
    }

    static void qualified() throws Exception {
        // ruleid: ox.java.weak-hash
        java.security.MessageDigest.getInstance("md5");
        // ok: ox.java.weak-hash
        java.security.MessageDigest.getInstance("sha-384", "SUN");
        // ruleid: ox.java.weak-cipher
        javax.crypto.Cipher.getInstance("DES/CBC/PKCS5PADDING", java.security.Security.getProvider("SunJCE"));
        // ok: ox.java.weak-cipher
        javax.crypto.Cipher.getInstance("AES/CCM/NoPadding");
    }

    void remember(HttpServletResponse response, HttpSession session) {
        // ruleid: ox.java.weak-random
        String rememberMeKey = Float.toString(new java.util.Random().nextFloat()).substring(2);
        // ruleid: ox.java.weak-random
        Cookie cookie = new Cookie("rememberMe", rememberMeKey);
        // ruleid: ox.java.weak-random
        session.setAttribute("rememberMe", rememberMeKey);
        // ruleid: ox.java.weak-random
        String resetToken = Long.toString(new Random().nextLong());
        byte[] bytes = new byte[16];
        new java.security.SecureRandom().nextBytes(bytes);
        // ok: ox.java.weak-random
        Cookie strong = new Cookie("rememberMe", java.util.Base64.getEncoder().encodeToString(bytes));
        byte[] weakBytes = new byte[16];
        new java.util.Random().nextBytes(weakBytes);
        // ruleid: ox.java.weak-random
        String rememberToken = java.util.Base64.getEncoder().encodeToString(weakBytes);
        // ok: ox.java.weak-random
        int jitter = new Random().nextInt(100);
        // ok: ox.java.weak-random
        double sample = Math.random() * jitter;
    }

    static void ciphers() throws Exception {
        // ruleid: ox.java.weak-cipher
        Cipher.getInstance("DES/CBC/PKCS5Padding");
        // ruleid: ox.java.weak-cipher
        Cipher.getInstance("AES/ECB/PKCS5Padding");
        // ruleid: ox.java.weak-cipher
        Cipher.getInstance("AES");
        // ok: ox.java.weak-cipher
        Cipher.getInstance("AES/GCM/NoPadding");
    }

    static TrustManager[] trustAll() {
        return new TrustManager[] {
            new X509TrustManager() {
                public X509Certificate[] getAcceptedIssuers() {
                    return new X509Certificate[0];
                }

                public void checkClientTrusted(X509Certificate[] chain, String authType) {
                }

                // ruleid: ox.java.trust-all-certificates
                public void checkServerTrusted(X509Certificate[] chain, String authType) {
                }
            }
        };
    }

    X509TrustManager checking(X509TrustManager system) {
        return new X509TrustManager() {
            public X509Certificate[] getAcceptedIssuers() {
                return system.getAcceptedIssuers();
            }

            public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
                system.checkClientTrusted(chain, authType);
            }

            // ok: ox.java.trust-all-certificates
            public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
                system.checkServerTrusted(chain, authType);
            }
        };
    }

    // ruleid: ox.java.hardcoded-credential
    private static final String DB_PASSWORD = "X85fve2F97pL4!mvmmpO";
    // ok: ox.java.hardcoded-credential
    private static final String TOKEN_URL = "https://auth.example.com/token";
    // ok: ox.java.hardcoded-credential
    private static final String PASSWORD_PROPERTY = "db.password";
    // ok: ox.java.hardcoded-credential
    private static final String dbPassword = "spring.datasource.password";
    // ok: ox.java.hardcoded-credential
    private final String apiKey = System.getenv("API_KEY");
}
